package pipeline

// This file holds Position: where an item lies in its source's input, what
// the reader sources give each item and what a Checkpoint commits.

import "fmt"

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
