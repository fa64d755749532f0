package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ec0f1147/pipeline"
)

func ExampleNewCheckpoint() {
	p := pipeline.New(context.Background())
	// Make the Checkpoint before the first stage. With an interval of an
	// hour, only the commit at the end comes.
	cp := pipeline.NewCheckpoint(p, time.Hour, func(_ context.Context, pos pipeline.Position) error {
		fmt.Println("resume from", pos) // save pos.Offset and pos.Line
		return nil
	})
	lines := pipeline.Lines(p, strings.NewReader("alpha\nbeta\ngamma\n"), 80, cp.Option())
	upper := pipeline.FanOut(p, lines, 3, func(_ context.Context, l pipeline.Line) (string, error) {
		return strings.ToUpper(l.Text), nil // finishes in any order
	})
	err := pipeline.ForEach(p, upper, 2, func(context.Context, string) error { return nil })
	fmt.Println(err)
	// Output:
	// resume from line 4 (bytes 17-17)
	// <nil>
}

func ExampleCheckpoint_Option() {
	// A source of your own: its items are Positioned.
	p := pipeline.New(context.Background())
	cp := pipeline.NewCheckpoint(p, time.Hour, func(_ context.Context, pos pipeline.Position) error {
		fmt.Println("next file:", pos.Offset)
		return nil
	})
	files := pipeline.FromSeq(p, func(yield func(file) bool) {
		for i, name := range []string{"a.go", "b.go", "c.go"} {
			if !yield(file{name, i}) {
				return
			}
		}
	}, cp.Option())
	fmt.Println(pipeline.Drain(p, files))
	// Output:
	// next file: 3
	// <nil>
}

// file is an item that knows its place: the n-th of a sorted list spans
// [n, n+1).
type file struct {
	name string
	n    int
}

func (f file) Position() pipeline.Position {
	return pipeline.Position{Offset: int64(f.n), End: int64(f.n) + 1, Line: int64(f.n) + 1, EndLine: int64(f.n) + 2}
}

func ExampleCheckpoint_Handled() {
	p := pipeline.New(context.Background())
	cp := pipeline.NewCheckpoint(p, time.Hour, func(context.Context, pipeline.Position) error { return nil })
	lines := pipeline.Lines(p, strings.NewReader("alpha\nbeta\ngamma\n"), 80, cp.Option())
	err := pipeline.ForEach(p, lines, 1, func(_ context.Context, l pipeline.Line) error {
		// A sink writing l in a transaction would write this position too.
		handled, _ := cp.Handled()
		fmt.Printf("%s: every line before line %d is handled\n", l.Text, handled.Line)
		return nil
	})
	fmt.Println(err)
	// Output:
	// alpha: every line before line 1 is handled
	// beta: every line before line 2 is handled
	// gamma: every line before line 3 is handled
	// <nil>
}

func ExampleCheckpoint_InFlight() {
	p := pipeline.New(context.Background())
	cp := pipeline.NewCheckpoint(p, time.Hour, func(context.Context, pipeline.Position) error { return nil })
	lines := pipeline.Lines(p, strings.NewReader(strings.Repeat("line\n", 1000)), 80, cp.Option())
	err := pipeline.Drain(p, pipeline.FanOut(p, lines, 4, func(_ context.Context, l pipeline.Line) (int, error) {
		return len(l.Text), nil
	}))
	now, peak := cp.InFlight()
	fmt.Println(err, now, peak > 0 && peak < 1000)
	// Output: <nil> 0 true
}

func ExampleLine_Position() {
	l := pipeline.Line{Text: "beta", Pos: pipeline.Position{Offset: 6, End: 11, Line: 2, EndLine: 3}}
	fmt.Println(l.Position(), "then", l.Position().Next())
	// Output: line 2 (bytes 6-11) then line 3 (bytes 11-11)
}

func ExampleRecord_Position() {
	p := pipeline.New(context.Background())
	records, err := pipeline.Collect(p, pipeline.CSV(p, strings.NewReader("a,b\nc,d\n"), 80, nil))
	fmt.Println(err, records[1].Position())
	// Output: <nil> line 2 (bytes 4-8)
}
