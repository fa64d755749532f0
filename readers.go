package pipeline

// This file holds what the reader sources (lines.go, csv.go) share: the
// Position of an item in its input, the Line and Record items, ReadError,
// the argument checks, and opening a file at a saved position.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
