package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/ec0f1147/pipeline"
	"golang.org/x/sync/errgroup"
)

// errgroupHand parses every input with at most limit goroutines at once and
// returns the numbers in input order, or the first error.
func errgroupHand(ctx context.Context, inputs []string, limit int) ([]int, error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(limit) // Go blocks while limit goroutines run
	out := make([]int, len(inputs))
	for i, s := range inputs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err // an earlier input failed: skip the work
			}
			n, err := strconv.Atoi(s)
			out[i] = n // each goroutine writes its own index: no lock needed
			return err
		})
	}
	// Wait returns the first error only: every later error is dropped, and
	// the error does not say which input failed unless the func says so.
	// A panic in a func is not recovered: it crashes the whole program.
	return out, g.Wait()
}

// errgroupPipe parses the inputs in order with at most limit calls at once.
// Instead of stopping at the first bad input it skips every bad one and
// reports them all (OnError); each error carries its input. A panic would
// come back as an error (a *pipeline.PanicError), not kill the program.
func errgroupPipe(ctx context.Context, inputs []string, limit int) ([]int, error) {
	var mu sync.Mutex // OnError runs on the stage's worker goroutines
	var bad []error
	p := newPipeline(ctx)
	nums := pipeline.FanOutOrdered(p, pipeline.Generate(p, inputs...), limit,
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) },
		pipeline.Name("parse"),
		pipeline.OnError(func(err *pipeline.StageError) error {
			mu.Lock()
			defer mu.Unlock()
			bad = append(bad, fmt.Errorf("input %q: %w", err.Item, err))
			return nil // skip the item, go on
		}))
	out, err := pipeline.Collect(p, nums)
	if err != nil {
		return out, err
	}
	return out, errors.Join(bad...)
}

var (
	errgroupGood = []string{"1", "2", "3", "4"}
	errgroupBad  = []string{"1", "x", "3", "y"}
)

func errgroupDemoHand(w io.Writer) error {
	out, err := errgroupHand(context.Background(), errgroupGood, 2)
	fmt.Fprintf(w, "parse %q: %v, err %v\n", errgroupGood, out, err)
	_, err = errgroupHand(context.Background(), errgroupBad, 1)
	fmt.Fprintf(w, "parse %q: %d error(s): %v\n", errgroupBad, countErrs(err), err)
	return nil
}

func errgroupDemoPipe(w io.Writer) error {
	out, err := errgroupPipe(context.Background(), errgroupGood, 2)
	fmt.Fprintf(w, "parse %q: %v, err %v\n", errgroupGood, out, err)
	out, err = errgroupPipe(context.Background(), errgroupBad, 1)
	fmt.Fprintf(w, "parse %q: kept %v, %d error(s):\n%v\n", errgroupBad, out, countErrs(err), err)
	return nil
}

// countErrs counts the errors inside a joined error.
func countErrs(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}
