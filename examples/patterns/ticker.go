package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ec0f1147/pipeline"
)

// tickerHand handles items at most one per every, waiting for a ticker
// before each.
func tickerHand(ctx context.Context, items []int, every time.Duration, handle func(int)) error {
	t := time.NewTicker(every)
	defer t.Stop() // before Go 1.23 an unstopped ticker was never collected
	for _, v := range items {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err() // a bare <-t.C would go on after a cancel, one tick at a time
		}
		handle(v)
	}
	return nil
}

// tickerPipe is the same rate: Throttle with a burst of 1 is a ticker that
// also ends when the pipeline is cancelled.
func tickerPipe(ctx context.Context, items []int, every time.Duration, handle func(int)) error {
	p := newPipeline(ctx)
	paced := pipeline.Throttle(p, pipeline.Generate(p, items...), every, 1)
	return pipeline.ForEach(p, paced, 1, func(_ context.Context, v int) error { handle(v); return nil })
}

func tickerDemo(w io.Writer, run func(context.Context, []int, time.Duration, func(int)) error) error {
	const every = 20 * time.Millisecond
	var got []int
	start := time.Now()
	err := run(context.Background(), []int{1, 2, 3, 4, 5}, every, func(v int) { got = append(got, v) })
	elapsed := time.Since(start)
	fmt.Fprintf(w, "handled %v\n", got)
	if min := time.Duration(len(got)-1) * every; elapsed >= min {
		fmt.Fprintf(w, "at most one per %s: 5 items took at least %s\n", every, min)
	} else {
		fmt.Fprintf(w, "TOO FAST: 5 items in %s\n", elapsed)
	}
	return err
}

func tickerDemoHand(w io.Writer) error { return tickerDemo(w, tickerHand) }
func tickerDemoPipe(w io.Writer) error { return tickerDemo(w, tickerPipe) }
