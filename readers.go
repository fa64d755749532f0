package pipeline

// This file holds what the reader sources (lines.go, csv.go) share: the
// Line and Record items (their Position is in position.go), ReadError, the
// argument checks, and opening a file at a saved position.

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

// Line is one line of text read by [Lines] or [FileLines]. Text is the line
// without its line ending ("\n", or "\r\n"); Pos covers the ending too.
type Line struct {
	Text string
	Pos  Position
}

// Position returns l.Pos: a Line is [Positioned], for a [Checkpoint].
func (l Line) Position() Position { return l.Pos }

// Record is one record read by [CSV] or [FileCSV]: its fields, as
// encoding/csv returns them, and where it lies in the input.
type Record struct {
	Fields []string
	Pos    Position
}

// Position returns r.Pos: a Record is [Positioned], for a [Checkpoint].
func (r Record) Position() Position { return r.Pos }

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
// read on a pipe. A seek or read that fails because ctx ended (the file
// closed under it) reports ctx's error.
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
	err = seekAndRead(f, path, from, read)
	if ctx.Err() != nil && err != nil && !errors.Is(err, ErrStopped) {
		return ctx.Err()
	}
	return err
}

// seekAndRead is withFile's work on the open file f.
func seekAndRead(f *os.File, path string, from Position, read func(io.Reader) error) error {
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
	return read(f)
}
