package pipeline_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ec0f1147/pipeline"
)

func ExampleLines() {
	p := pipeline.New(context.Background())
	lines := pipeline.Lines(p, strings.NewReader("alpha\nbeta\r\ngamma"), 80)
	err := pipeline.ForEach(p, lines, 1, func(_ context.Context, l pipeline.Line) error {
		fmt.Printf("line %d %q: bytes %d-%d\n", l.Pos.Line, l.Text, l.Pos.Offset, l.Pos.End)
		return nil
	})
	fmt.Println(err)
	// Output:
	// line 1 "alpha": bytes 0-6
	// line 2 "beta": bytes 6-12
	// line 3 "gamma": bytes 12-17
	// <nil>
}

func ExampleFileLines() {
	const log = "testdata/readers/access.log"

	// A first run handles the first two lines and saves the position after
	// the last line it handled.
	p := pipeline.New(context.Background())
	first, err := pipeline.Collect(p, pipeline.FileLines(p, log, pipeline.Position{}, 1024))
	if err != nil {
		fmt.Println(err)
		return
	}
	saved := first[1].Pos.Next()
	fmt.Println("saved:", saved)

	// The next run starts from the saved position: it seeks there and
	// numbers lines as in the whole file.
	p = pipeline.New(context.Background())
	rest, err := pipeline.Collect(p, pipeline.FileLines(p, log, saved, 1024))
	for _, l := range rest {
		fmt.Printf("line %d: %s\n", l.Pos.Line, l.Text)
	}
	fmt.Println(err)
	// Output:
	// saved: line 3 (bytes 38-38)
	// line 3: POST /login 302
	// line 4: GET /style.css 200
	// <nil>
}

func ExampleCSV() {
	input := "name;note\n# a comment line\nAda;\"two\nlines\"\nBrian;plain\n"
	p := pipeline.New(context.Background())
	records := pipeline.CSV(p, strings.NewReader(input), 1<<20, func(r *csv.Reader) {
		r.Comma = ';'
		r.Comment = '#'
	})
	err := pipeline.ForEach(p, records, 1, func(_ context.Context, rec pipeline.Record) error {
		fmt.Printf("lines %d-%d: %q\n", rec.Pos.Line, rec.Pos.EndLine-1, rec.Fields)
		return nil
	})
	fmt.Println(err)
	// Output:
	// lines 1-1: ["name" "note"]
	// lines 3-4: ["Ada" "two\nlines"]
	// lines 5-5: ["Brian" "plain"]
	// <nil>
}

func ExampleFileCSV() {
	const orders = "testdata/readers/orders.csv"

	// Say an earlier run handled the header and the first order, and saved
	// the position after it: {Offset: 37, Line: 3}.
	saved := pipeline.Position{Offset: 37, Line: 3}

	p := pipeline.New(context.Background())
	records := pipeline.FileCSV(p, orders, saved, 1<<20, nil)
	err := pipeline.ForEach(p, records, 1, func(_ context.Context, rec pipeline.Record) error {
		fmt.Printf("%v: %q, then save %v\n", rec.Pos, rec.Fields, rec.Pos.Next())
		return nil
	})
	fmt.Println(err)
	// Output:
	// line 3 (bytes 37-57): ["2" "Brian" "two\nlines"], then save line 5 (bytes 57-57)
	// line 5 (bytes 57-65): ["3" "Chen" ""], then save line 6 (bytes 65-65)
	// <nil>
}

func ExamplePosition_Next() {
	// The second line of "alpha\nbeta\r\ngamma".
	pos := pipeline.Position{Offset: 6, End: 12, Line: 2, EndLine: 3}
	next := pos.Next()
	fmt.Println("resume at byte", next.Offset, "on line", next.Line)
	// Output: resume at byte 12 on line 3
}

func ExamplePosition_String() {
	fmt.Println(pipeline.Position{Offset: 6, End: 12, Line: 2, EndLine: 3})
	// Output: line 2 (bytes 6-12)
}

func ExampleReadError() {
	p := pipeline.New(context.Background())
	lines := pipeline.Lines(p, strings.NewReader("short\nmuch too long\nshort\n"), 8)
	got, err := pipeline.Collect(p, lines)
	fmt.Println(len(got), "line read")

	var re *pipeline.ReadError
	if errors.As(err, &re) {
		fmt.Println("failed at line", re.Pos.Line, "byte", re.Pos.Offset)
	}
	fmt.Println(errors.Is(err, pipeline.ErrTooLong))
	// Output:
	// 1 line read
	// failed at line 2 byte 6
	// true
}

func ExampleReadError_Error() {
	p := pipeline.New(context.Background())
	records := pipeline.CSV(p, strings.NewReader("a,b\nc\n"), 1<<20, nil, pipeline.Name("orders"))
	fmt.Println(pipeline.Drain(p, records))
	// Output:
	// pipeline: stage orders: read line 2, byte 4: record on line 2: wrong number of fields
}

func ExampleReadError_Unwrap() {
	err := &pipeline.ReadError{Path: "orders.csv", Pos: pipeline.Position{Offset: 120, Line: 7}, Err: io.ErrUnexpectedEOF}
	fmt.Println(err)
	fmt.Println(errors.Is(err, io.ErrUnexpectedEOF))
	// Output:
	// read orders.csv: line 7, byte 120: unexpected EOF
	// true
}
