package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ec0f1147/pipeline"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// file is a job whose cost is its size: loading it takes that many MB.
type file struct {
	Name string
	MB   int
}

// weightedHand loads every file while the files loading at once never
// hold more than budgetMB, with x/sync's weighted semaphore.
func weightedHand(ctx context.Context, files []file, budgetMB int, load func(context.Context, file) error) error {
	sem := semaphore.NewWeighted(int64(budgetMB))
	g, ctx := errgroup.WithContext(ctx)
	for _, f := range files {
		// Check the weight first: Acquire of more than the whole budget
		// does not fail, it waits until ctx is done (with Background:
		// forever).
		if f.MB > budgetMB {
			g.Go(func() error { return fmt.Errorf("%s: %d MB exceeds the %d MB budget", f.Name, f.MB, budgetMB) })
			break
		}
		if err := sem.Acquire(ctx, int64(f.MB)); err != nil {
			break // ctx is done: a load failed
		}
		g.Go(func() error {
			defer sem.Release(int64(f.MB)) // the same weight, on every path
			return load(ctx, f)
		})
	}
	return g.Wait()
}

// weightedPipe loads the files with up to 4 workers; Weighted makes each
// call hold f.MB slots of a limiter of budgetMB. A file heavier than the
// whole budget fails at once with an error, it cannot wait forever.
func weightedPipe(ctx context.Context, files []file, budgetMB int, load func(context.Context, file) error) error {
	mem := pipeline.NewLimiter(budgetMB)
	p := newPipeline(ctx)
	loaded := pipeline.FanOut(p, pipeline.Generate(p, files...), 4,
		pipeline.Weighted(mem, func(f file) int { return f.MB },
			func(ctx context.Context, f file) (struct{}, error) { return struct{}{}, load(ctx, f) }),
		pipeline.Name("load"))
	return pipeline.Drain(p, loaded)
}

// weightedLoad takes f.MB of memory for a moment and records the peak.
func weightedLoad(mem *gauge) func(context.Context, file) error {
	return func(ctx context.Context, f file) error {
		defer mem.add(f.MB)()
		select {
		case <-time.After(2 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var (
	weightedFiles = []file{{"a", 6}, {"b", 3}, {"c", 4}, {"d", 1}, {"e", 5}, {"f", 2}, {"g", 7}, {"h", 3}}
	weightedHuge  = []file{{"a", 6}, {"huge", 11}, {"c", 4}}
)

func weightedDemo(w io.Writer, run func(context.Context, []file, int, func(context.Context, file) error) error) error {
	var mem gauge
	err := run(context.Background(), weightedFiles, 10, weightedLoad(&mem))
	fmt.Fprintf(w, "loaded %d files (%d MB in all) within 10 MB: err %v\n%s", len(weightedFiles), 31, err,
		limitLine(mem.Max(), 10))
	// A file heavier than the budget must fail, not hang: give it a second.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = run(ctx, weightedHuge, 10, weightedLoad(&gauge{}))
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintln(w, "an 11 MB file: HUNG until the deadline")
	case err != nil:
		fmt.Fprintln(w, "an 11 MB file: fails at once")
	default:
		fmt.Fprintln(w, "an 11 MB file: LOADED over the budget")
	}
	return nil
}

func weightedDemoHand(w io.Writer) error { return weightedDemo(w, weightedHand) }
func weightedDemoPipe(w io.Writer) error { return weightedDemo(w, weightedPipe) }
