package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ec0f1147/pipeline"
)

// The three-stage pipeline of the quick start, generate → map(x*3) →
// filter(even) → collect, built with the library and by hand in the classic
// way (unbuffered channels, every send in a select with ctx.Done()), so that
// benchstat compares them in one run:
//
//	go test -run '^$' -bench Pipeline3 -count 6 . | benchstat -col /impl -
//
// Each benchmark op is one item.

func countTo(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := 0; i < n; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

func triple(_ context.Context, x int) (int, error) { return x * 3, nil }
func even(x int) bool                              { return x%2 == 0 }

func libPipeline3(n, workers int) ([]int, error) {
	p := pipeline.New(context.Background())
	src := pipeline.FromSeq(p, countTo(n))
	m := pipeline.FanOut(p, src, workers, triple)
	f := pipeline.Filter(p, m, even)
	return pipeline.Collect(p, f)
}

func handPipeline3(n, workers int) ([]int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gen := make(chan int)
	go func() {
		defer close(gen)
		for i := 0; i < n; i++ {
			select {
			case gen <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	mapped := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range gen {
				r, err := triple(ctx, v)
				if err != nil {
					cancel()
					return
				}
				select {
				case mapped <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(mapped) }()
	filtered := make(chan int)
	go func() {
		defer close(filtered)
		for v := range mapped {
			if !even(v) {
				continue
			}
			select {
			case filtered <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	var out []int
	for v := range filtered {
		out = append(out, v)
	}
	return out, ctx.Err()
}

func BenchmarkPipeline3(b *testing.B) {
	impls := []struct {
		name string
		run  func(n, workers int) ([]int, error)
	}{
		{"handctx", handPipeline3},
		{"pipeline", libPipeline3},
	}
	for _, workers := range []int{1, 4} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("workers=%d/impl=%s", workers, impl.name), func(b *testing.B) {
				b.ReportAllocs()
				out, err := impl.run(b.N, workers)
				if err != nil || len(out) != (b.N+1)/2 {
					b.Fatalf("got %d items, err %v; want %d", len(out), err, (b.N+1)/2)
				}
			})
		}
	}
}
