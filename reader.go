package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Reader sources: Lines and CSV read an io.Reader, FileLines and FileCSV
// open a file and can start from a saved Position. They are built on
// Produce: Stop ends them cleanly (the item read but refused by emit is not
// lost, it is simply not emitted, and a resumed run reads it again),
// cancellation ends them as soon as the read under way returns.

// Position is where an item of a reader source lies in its input. Offsets
// count bytes from the start of the input (for [Lines] and [CSV], from where
// the reader stood when the source began; for [FileLines] and [FileCSV],
// from the start of the file), so input[Offset:End] are exactly the item's
// bytes, its line ending included. Lines are numbered from 1.
//
// To resume a job after the items up to and including x are handled, save
// x.Pos.Next() and hand it to [FileLines] or [FileCSV] in the next run: it
// reads on from the item after x, with the same offsets and line numbers.
type Position struct {
	Offset  int64 // the byte offset at which the item starts
	End     int64 // the byte offset just past the item and its line ending: where the next item starts
	Line    int64 // the line number at Offset
	EndLine int64 // the line number at End: Line+1 after a line ending, more after a CSV record holding quoted newlines
}

// Next returns the position at which the item after this one starts: the
// position to save once this item is handled, and to start from when the job
// is run again.
func (p Position) Next() Position {
	return Position{Offset: p.End, End: p.End, Line: p.EndLine, EndLine: p.EndLine}
}

// String returns "line L (bytes Offset-End)".
func (p Position) String() string {
	return fmt.Sprintf("line %d (bytes %d-%d)", p.Line, p.Offset, p.End)
}

// Line is one line of text read by [Lines] or [FileLines]. Text is the line
// without its line ending ("\n", or "\r\n"); Pos covers the ending too.
type Line struct {
	Text string
	Pos  Position
}

// Record is one record read by [CSV] or [FileCSV]: its fields, as
// encoding/csv returns them, and where it lies in the input.
type Record struct {
	Fields []string
	Pos    Position
}

// ErrTooLong is wrapped by the [*ReadError] of a line or record longer than
// the maximum its source was given.
var ErrTooLong = errors.New("pipeline: too long")

// ReadError is the failure of a reader source at a position of its input. It
// arrives wrapped in a [*StageError]; errors.As finds it, and errors.Is
// reaches Err: [ErrTooLong], a *csv.ParseError (its line numbers counted as
// in Pos), or the reader's own error.
type ReadError struct {
	// Path is the file read by [FileLines] or [FileCSV]; empty for a reader.
	Path string
	// Pos is where the item that could not be read starts (Offset, Line):
	// the line, or the CSV record a parse error is about. For a CSV record
	// too long or a read error during one, it is the end of the record
	// before it, since blank and comment lines may come first. End is how
	// far the input had been read when the error happened.
	Pos Position
	Err error
}

// Error names the file (if any), the line and the byte offset, then the cause.
func (e *ReadError) Error() string {
	where := fmt.Sprintf("line %d, byte %d", e.Pos.Line, e.Pos.Offset)
	if e.Path != "" {
		where = e.Path + ": " + where
	}
	return fmt.Sprintf("read %s: %v", where, e.Err)
}

// Unwrap returns Err.
func (e *ReadError) Unwrap() error { return e.Err }

// Lines is a source that emits each line of r, in order, with its position,
// then closes its output. A line ends at "\n"; a "\r" just before it, or at
// the very end of the input, is left out of Text as well (as bufio.ScanLines
// does), so Windows line endings need nothing special; Pos counts every byte.
// A last line without a line ending is emitted too, and an input ending in
// "\n" has no empty last line.
//
// maxLen bounds a line's Text, in bytes: a longer line fails the pipeline
// with a [*ReadError] wrapping [ErrTooLong] that names its line and offset;
// it is never cut. Memory is bounded by maxLen plus a 64 KiB buffer. A read
// error fails the pipeline the same way, naming where the line being read
// starts.
//
// [Pipeline.Stop] ends Lines cleanly: every line emitted reaches the sink,
// and the line read when Stop came is not emitted. Cancellation ends it once
// the read under way returns: Lines cannot interrupt a Read blocked on r
// ([FileLines] can, it closes its file). Lines does not close r.
//
// Options are those of [Produce]; the default name is "lines#N". A nil r or
// maxLen < 1 is an invalid argument.
func Lines(p *Pipeline, r io.Reader, maxLen int, opts ...StageOption) <-chan Line {
	if bad := badReader(r == nil, maxLen); bad != "" {
		return invalidSource[Line](p, "Lines", bad)
	}
	return Produce(p, func(_ context.Context, emit func(Line) error) error {
		return readLines(r, "", Position{Line: 1}, maxLen, emit)
	}, sourceName(p, "lines", opts)...)
}

// FileLines is [Lines] over the file at path, read from position from: the
// zero Position reads the whole file, and the [Position.Next] of an item
// emitted by an earlier run reads on from the item after it (see
// [Position]). from.Line is the line number at from.Offset; 0 counts as 1.
//
// The file is opened when the pipeline runs; failing to open it, or a from
// past the end of the file (the file has been truncated or replaced), fails
// the pipeline with a [*ReadError] naming the file. FileLines closes the
// file when it ends, and at once on cancellation or Stop, so that even a
// read blocked on a pipe gives up.
//
// An empty path, a negative from.Offset or from.Line, or maxLen < 1 is an
// invalid argument.
func FileLines(p *Pipeline, path string, from Position, maxLen int, opts ...StageOption) <-chan Line {
	if bad := badFile(path, from, maxLen); bad != "" {
		return invalidSource[Line](p, "FileLines", bad)
	}
	from = startAt(from)
	return Produce(p, func(ctx context.Context, emit func(Line) error) error {
		return withFile(ctx, path, from, func(f io.Reader) error {
			return readLines(f, path, from, maxLen, emit)
		})
	}, sourceName(p, "filelines", opts)...)
}

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
	if bad := badReader(r == nil, maxLen); bad != "" {
		return invalidSource[Record](p, "CSV", bad)
	}
	cs, bad := newCSVSource(Position{Line: 1}, maxLen, setup)
	if bad != "" {
		return invalidSource[Record](p, "CSV", bad)
	}
	return Produce(p, func(_ context.Context, emit func(Record) error) error {
		return cs.run(r, "", emit)
	}, sourceName(p, "csv", opts)...)
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
	if bad := badFile(path, from, maxLen); bad != "" {
		return invalidSource[Record](p, "FileCSV", bad)
	}
	from = startAt(from)
	cs, bad := newCSVSource(from, maxLen, setup)
	if bad != "" {
		return invalidSource[Record](p, "FileCSV", bad)
	}
	return Produce(p, func(ctx context.Context, emit func(Record) error) error {
		return withFile(ctx, path, from, func(f io.Reader) error {
			return cs.run(f, path, emit)
		})
	}, sourceName(p, "filecsv", opts)...)
}

// ---- arguments ----

func badReader(nilReader bool, maxLen int) string {
	switch {
	case nilReader:
		return "reader must not be nil"
	case maxLen < 1:
		return fmt.Sprintf("maxLen(%d) must be >= 1", maxLen)
	}
	return ""
}

func badFile(path string, from Position, maxLen int) string {
	switch {
	case path == "":
		return "path must not be empty"
	case from.Offset < 0 || from.Line < 0:
		return fmt.Sprintf("from %v: offset and line must be >= 0", from)
	}
	return badReader(false, maxLen)
}

// startAt is the position reading starts at: from's offset and line (0
// counting as 1).
func startAt(from Position) Position {
	line := max(from.Line, 1)
	return Position{Offset: from.Offset, End: from.Offset, Line: line, EndLine: line}
}

// invalidSource fails p with an invalid-argument error about fn and returns
// a closed output, starting nothing.
func invalidSource[T any](p *Pipeline, fn, msg string) <-chan T {
	if p != nil {
		p.fail(errArg(fn, msg))
	}
	ch := make(chan T)
	close(ch)
	return ch
}

// sourceName puts a default name, kind#N like the core's defaults, before
// opts, so that a Name among opts wins. N is the stage's place in creation
// order (it counts on no other stage being built at the same moment).
func sourceName(p *Pipeline, kind string, opts []StageOption) []StageOption {
	if p == nil {
		return opts
	}
	return append([]StageOption{Name(fmt.Sprintf("%s#%d", kind, len(p.Stats())+1))}, opts...)
}

// withFile opens path, seeks to from.Offset and runs read on the file. The
// file is closed when read returns, or as soon as ctx ends, which unblocks a
// read on a pipe. A read that fails because ctx ended reports ctx's error.
func withFile(ctx context.Context, path string, from Position, read func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return &ReadError{Path: path, Pos: from, Err: err}
	}
	closeNow := context.AfterFunc(ctx, func() { f.Close() })
	defer func() {
		if closeNow() {
			f.Close()
		}
	}()
	if from.Offset > 0 {
		info, err := f.Stat()
		if err != nil {
			return &ReadError{Path: path, Pos: from, Err: err}
		}
		if info.Mode().IsRegular() && from.Offset > info.Size() {
			return &ReadError{Path: path, Pos: from,
				Err: fmt.Errorf("start offset %d is past the end of the file (%d bytes)", from.Offset, info.Size())}
		}
		if _, err := f.Seek(from.Offset, io.SeekStart); err != nil {
			return &ReadError{Path: path, Pos: from, Err: err}
		}
	}
	err = read(f)
	if ctx.Err() != nil && err != nil && !errors.Is(err, ErrStopped) {
		return ctx.Err()
	}
	return err
}

// ---- lines ----

// lineBuffer is the bufio buffer of Lines: lines longer than it are
// gathered in a slice that grows up to maxLen.
const lineBuffer = 64 << 10

// readLines emits the lines of r, the first starting at from.
func readLines(r io.Reader, path string, from Position, maxLen int, emit func(Line) error) error {
	size := lineBuffer
	if maxLen < size-2 {
		size = maxLen + 2 // room for the line ending
	}
	br := bufio.NewReaderSize(r, size)
	off, line := from.Offset, from.Line
	var long []byte // a line gathered across buffer fills
	// No check of the context per line: emit reports Stop and cancellation.
	for {
		raw, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], raw...)
			for err == bufio.ErrBufferFull && len(long)-2 <= maxLen {
				raw, err = br.ReadSlice('\n')
				long = append(long, raw...)
			}
			raw = long
		}
		text := raw
		ended := len(text) > 0 && text[len(text)-1] == '\n'
		if ended {
			text = text[:len(text)-1]
		}
		if n := len(text); n > 0 && text[n-1] == '\r' && (ended || err == io.EOF) {
			text = text[:n-1]
		}
		pos := Position{Offset: off, End: off + int64(len(raw)), Line: line, EndLine: line}
		switch {
		case len(text) > maxLen || err == bufio.ErrBufferFull:
			return &ReadError{Path: path, Pos: pos, Err: fmt.Errorf("%w: line longer than %d bytes", ErrTooLong, maxLen)}
		case err != nil && err != io.EOF:
			return &ReadError{Path: path, Pos: pos, Err: err}
		case len(raw) == 0: // io.EOF
			return nil
		}
		if ended {
			pos.EndLine++
		}
		if err := emit(Line{Text: string(text), Pos: pos}); err != nil {
			return err
		}
		if err == io.EOF {
			return nil
		}
		off, line = pos.End, pos.EndLine
	}
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
