package pipeline

// This file holds the line sources: Lines over an io.Reader and FileLines
// over a file, from a saved Position.

import (
	"bufio"
	"context"
	"fmt"
	"io"
)

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
	return source(p, "lines", opts, badReader(r == nil, maxLen), nil, func(_ context.Context, _ inlet[Line], e *emitter[Line]) error {
		emit := e.emit
		return readLines(r, "", Position{Line: 1}, maxLen, emit)
	})
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
	bad := badFile(path, from, maxLen)
	from = startAt(from)
	return source(p, "filelines", opts, bad, nil, func(ctx context.Context, _ inlet[Line], e *emitter[Line]) error {
		emit := e.emit
		return withFile(ctx, path, from, func(f io.Reader) error {
			return readLines(f, path, from, maxLen, emit)
		})
	})
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
