package pipeline

// This file holds the CSV sources: CSV over an io.Reader and FileCSV over a
// file, from a saved Position, with exact positions through a tape of the
// bytes encoding/csv reads.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// CSV is a source that emits each record of r, parsed by encoding/csv, in
// order, with its position, then closes its output. setup, if not nil, is
// called once, before CSV returns, to configure the csv.Reader (Comma,
// Comment, FieldsPerRecord, LazyQuotes, TrimLeadingSpace); ReuseRecord is
// always turned off, since records are handed downstream.
//
// A record's Pos runs from the start of its first line to the end of its
// line ending, so a quoted field holding newlines makes it span lines
// (Line, EndLine), and the blank and comment lines encoding/csv skips lie
// between records. "\r\n" line endings are handled as encoding/csv handles
// them; Pos counts every byte.
//
// maxLen bounds the bytes of one record in the input, counted from the end
// of the record before it (so blank and comment lines before it count): a
// longer record, such as the rest of the input swallowed by an unclosed
// quote, fails the pipeline with a [*ReadError] wrapping [ErrTooLong]
// instead of filling memory. A parse error (a *csv.ParseError, wrong field
// counts included) or a read error fails the pipeline with a [*ReadError]
// naming the line and offset where the failing record starts.
//
// Stop and cancellation are as for [Lines]. CSV does not close r. Options
// are those of [Produce]; the default name is "csv#N". A nil r, maxLen < 1,
// or a setup that leaves an invalid Comma or Comment is an invalid argument.
func CSV(p *Pipeline, r io.Reader, maxLen int, setup func(*csv.Reader), opts ...StageOption) <-chan Record {
	bad := badReader(r == nil, maxLen)
	var cs *csvSource
	if bad == "" {
		cs, bad = newCSVSource(Position{Line: 1}, maxLen, setup)
	}
	return source(p, "csv", opts, bad, nil, func(_ context.Context, _ inlet[Record], e *emitter[Record]) error {
		emit := e.emit
		return cs.run(r, "", emit)
	})
}

// FileCSV is [CSV] over the file at path, read from position from, as
// [FileLines] reads a file: the zero Position reads the whole file, the
// [Position.Next] of a record emitted by an earlier run reads on from the
// record after it. Opening errors, a from past the end of the file, and
// closing are as for FileLines.
//
// Resuming starts encoding/csv afresh at from: with FieldsPerRecord 0 the
// first record read fixes the field count, and a header line is not seen
// again (read it with a separate FileCSV of the zero position if needed).
//
// An empty path, a negative from.Offset or from.Line, maxLen < 1, or a setup
// that leaves an invalid Comma or Comment is an invalid argument.
func FileCSV(p *Pipeline, path string, from Position, maxLen int, setup func(*csv.Reader), opts ...StageOption) <-chan Record {
	bad := badFile(path, from, maxLen)
	from = startAt(from)
	var cs *csvSource
	if bad == "" {
		cs, bad = newCSVSource(from, maxLen, setup)
	}
	return source(p, "filecsv", opts, bad, nil, func(ctx context.Context, _ inlet[Record], e *emitter[Record]) error {
		emit := e.emit
		return withFile(ctx, path, from, func(f io.Reader) error {
			return cs.run(f, path, emit)
		})
	})
}

// ---- CSV ----

// csvSource reads records with encoding/csv through a tape, which keeps the
// raw bytes of the record being read so that its exact span and line count
// can be found, and refuses to let a record grow past maxLen.
type csvSource struct {
	cr   *csv.Reader
	tape *tape
	base Position // where cr started: its offset 0 and line 1
}

func newCSVSource(from Position, maxLen int, setup func(*csv.Reader)) (*csvSource, string) {
	t := &tape{start: from.Offset, line: from.Line, max: int64(maxLen)}
	cr := csv.NewReader(t)
	if setup != nil {
		setup(cr)
	}
	cr.ReuseRecord = false
	// encoding/csv checks Comma and Comment on the first Read: do it now, on
	// an empty input, so that a bad setup is an invalid argument.
	probe := csv.NewReader(strings.NewReader(""))
	probe.Comma, probe.Comment = cr.Comma, cr.Comment
	if _, err := probe.Read(); err != io.EOF {
		return nil, fmt.Sprintf("setup: %v", err)
	}
	return &csvSource{cr: cr, tape: t, base: from}, ""
}

// run emits the records read from r.
func (cs *csvSource) run(r io.Reader, path string, emit func(Record) error) error {
	t := cs.tape
	t.r = r
	// No check of the context per record: emit reports Stop and cancellation.
	for {
		fields, err := cs.cr.Read()
		if err == io.EOF {
			return nil
		}
		end := cs.base.Offset + cs.cr.InputOffset()
		if err != nil {
			return cs.fail(path, end, err)
		}
		line, _ := cs.cr.FieldPos(0)
		pos := t.span(cs.base.Line+int64(line)-1, end)
		if err := emit(Record{Fields: fields, Pos: pos}); err != nil {
			return err
		}
	}
}

// fail turns an error of csv.Reader.Read into a ReadError at the record's
// start. A ParseError's line numbers are made to count from the input's
// first line, as Pos does.
func (cs *csvSource) fail(path string, end int64, err error) error {
	t := cs.tape
	pos := Position{Offset: t.start, End: end, Line: t.line, EndLine: t.line}
	var pe *csv.ParseError
	switch {
	case t.full:
		// The record was cut at the limit: whatever encoding/csv made of
		// the part it got (a quote cut from its field is a ParseError), the
		// record is too long.
		err = fmt.Errorf("%w: record longer than %d bytes", ErrTooLong, t.max)
	case errors.As(err, &pe):
		shifted := *pe
		shifted.StartLine += int(cs.base.Line - 1)
		shifted.Line += int(cs.base.Line - 1)
		err = &shifted
		pos.Offset = t.lineStart(int64(shifted.StartLine))
		pos.Line, pos.EndLine = int64(shifted.StartLine), int64(shifted.StartLine)
	}
	return &ReadError{Path: path, Pos: pos, Err: err}
}

// errTapeFull is what the tape returns to encoding/csv for a record past
// its maximum length.
var errTapeFull = errors.New("record too long")

// tape is the reader encoding/csv reads through. It keeps every byte handed
// out since the end of the last record emitted (start, on line), and hands
// out no more than max bytes past start: encoding/csv reads only while the
// record it is parsing is unfinished, so a read beyond that point means the
// record is too long.
type tape struct {
	r     io.Reader
	mem   []byte // mem[head:] is the input from start on, as far as it was read
	head  int
	start int64 // the offset of mem[head]: the end of the last record
	line  int64 // the line number at start
	max   int64
	full  bool // a read was refused: the record is longer than max
}

// kept is the input from start on, as far as it was read.
func (t *tape) kept() []byte { return t.mem[t.head:] }

func (t *tape) Read(b []byte) (int, error) {
	room := t.max - int64(len(t.mem)-t.head)
	if room <= 0 {
		// At the limit: a record of exactly max bytes at the end of the
		// input is fine, so look for one more byte before refusing.
		var one [1]byte
		n, err := io.ReadAtLeast(t.r, one[:], 1)
		if n == 0 {
			return 0, err
		}
		t.full = true
		return 0, errTapeFull
	}
	if int64(len(b)) > room {
		b = b[:room]
	}
	n, err := t.r.Read(b)
	if t.head > 0 && len(t.mem)+n > cap(t.mem) {
		// Move what is kept to the front rather than grow.
		t.mem = t.mem[:copy(t.mem, t.mem[t.head:])]
		t.head = 0
	}
	t.mem = append(t.mem, b[:n]...)
	return n, err
}

// lineStart is the offset at which line starts, for a line at or after
// t.line within the bytes kept.
func (t *tape) lineStart(line int64) int64 {
	kept, i := t.kept(), 0
	for l := t.line; l < line; l++ {
		j := bytes.IndexByte(kept[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return t.start + int64(i)
}

// span returns the position of the record that starts on line and ends at
// end, then drops the bytes before end.
func (t *tape) span(line, end int64) Position {
	off := t.lineStart(line)
	endLine := line + int64(bytes.Count(t.kept()[off-t.start:end-t.start], []byte{'\n'}))
	t.head += int(end - t.start)
	t.start, t.line = end, endLine
	return Position{Offset: off, End: end, Line: line, EndLine: endLine}
}
