package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/ec0f1147/pipeline"
)

// stagesHand runs generate → square → keep odd, and returns the first n
// results. The caller stops reading early, so every stage must be told to
// stop: that is what done is for.
func stagesHand(n int) []int {
	done := make(chan struct{})
	// Without this close, returning below leaves every stage blocked on a
	// send that nobody will ever read: three goroutines leaked per call.
	defer close(done)

	nums := make(chan int)
	go func() {
		defer close(nums)
		for i := 1; ; i++ {
			select {
			case nums <- i:
			case <-done:
				return
			}
		}
	}()
	squares := make(chan int)
	go func() {
		defer close(squares)
		for v := range nums {
			select {
			case squares <- v * v:
			case <-done:
				return
			}
		}
	}()
	odd := make(chan int)
	go func() {
		defer close(odd)
		for v := range squares {
			if v%2 == 0 {
				continue
			}
			select {
			case odd <- v:
			case <-done:
				return
			}
		}
	}()

	var out []int
	for v := range odd {
		out = append(out, v)
		if len(out) == n {
			break // early return: the deferred close(done) stops the stages
		}
	}
	return out
}

// stagesPipe is the same three stages. Breaking out of the range over All
// cancels them, and All returns only once every goroutine has.
func stagesPipe(n int) ([]int, error) {
	p := newPipeline(context.Background())
	nums := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 1; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
	})
	squares := pipeline.FanOutOrdered(p, nums, 1, func(_ context.Context, v int) (int, error) { return v * v, nil })
	odd := pipeline.Filter(p, squares, func(v int) bool { return v%2 != 0 })

	var out []int
	for v := range pipeline.All(p, odd) {
		out = append(out, v)
		if len(out) == n {
			break
		}
	}
	return out, p.Wait()
}

func stagesDemo(w io.Writer, run func() ([]int, error)) error {
	before := runtime.NumGoroutine()
	out, err := run()
	fmt.Fprintf(w, "first 5 odd squares: %v\n", out)
	fmt.Fprintln(w, leakLine(before))
	return err
}

func stagesDemoHand(w io.Writer) error {
	return stagesDemo(w, func() ([]int, error) { return stagesHand(5), nil })
}

func stagesDemoPipe(w io.Writer) error {
	return stagesDemo(w, func() ([]int, error) { return stagesPipe(5) })
}
