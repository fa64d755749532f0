// Command w6 is workload W6 of the benchmark suite: it streams -n items
// through W1 (a counting source → map(x*3) on one worker → filter(even) → a
// running count and sum) and prints the count and the sum. Nothing holds the
// items, so its peak memory must not grow with -n; measure it from outside:
//
//	/usr/bin/time -v w6 -n 5000000 2>&1 | grep 'Maximum resident'
//
// -impl chooses who runs the stream: pipeline (the library), handctx (the
// hand-written pipeline, unbuffered channels and every send in a select with
// ctx.Done()) or none (nothing at all: the Go runtime's own footprint, the
// baseline). bench/run.sh runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"os"

	"github.com/ec0f1147/pipeline"
)

func main() {
	n := flag.Int("n", 5_000_000, "items to stream")
	impl := flag.String("impl", "pipeline", "pipeline, handctx or none")
	flag.Parse()

	count, sum, err := run(context.Background(), *impl, *n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "w6:", err)
		os.Exit(1)
	}
	fmt.Printf("impl=%s items=%d kept=%d sum=%d\n", *impl, *n, count, sum)
}

// run streams 0…n-1 through map(x*3) → filter(even) with impl and returns how
// many results were kept and their sum.
func run(ctx context.Context, impl string, n int) (count, sum int, err error) {
	switch impl {
	case "pipeline":
		return viaPipeline(ctx, n)
	case "handctx":
		return byHand(ctx, n)
	case "none":
		return 0, 0, nil
	}
	return 0, 0, fmt.Errorf("unknown -impl %q: want pipeline, handctx or none", impl)
}

type tally struct{ count, sum int }

func viaPipeline(ctx context.Context, n int) (int, int, error) {
	p := pipeline.New(ctx)
	mapped := pipeline.FanOut(p, pipeline.FromSeq(p, countTo(n)), 1,
		func(_ context.Context, x int) (int, error) { return x * 3, nil })
	kept := pipeline.Filter(p, mapped, func(x int) bool { return x%2 == 0 })
	t, err := pipeline.Reduce(p, kept, tally{}, func(t tally, x int) tally {
		return tally{t.count + 1, t.sum + x}
	})
	return t.count, t.sum, err
}

func countTo(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func byHand(ctx context.Context, n int) (int, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	src := make(chan int)
	go func() {
		defer close(src)
		for i := range n {
			select {
			case src <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	mapped := make(chan int)
	go func() {
		defer close(mapped)
		for x := range src {
			select {
			case mapped <- x * 3:
			case <-ctx.Done():
				return
			}
		}
	}()
	kept := make(chan int)
	go func() {
		defer close(kept)
		for x := range mapped {
			if x%2 != 0 {
				continue
			}
			select {
			case kept <- x:
			case <-ctx.Done():
				return
			}
		}
	}()

	var t tally
	for x := range kept {
		t.count++
		t.sum += x
	}
	return t.count, t.sum, context.Cause(ctx)
}
