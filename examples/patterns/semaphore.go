package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

// semaphoreHand runs work on every item, at most limit at once, with a
// buffered channel as the semaphore, and returns the results in order.
func semaphoreHand(items []int, limit int, work func(int) int) []int {
	sem := make(chan struct{}, limit)
	out := make([]int, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		sem <- struct{}{} // acquire before starting: never more than limit goroutines
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Release in a defer: a release at the end of the body is
			// skipped by an early return or a panic, the slot is lost,
			// and once limit slots are lost the loop above blocks forever.
			defer func() { <-sem }()
			out[i] = work(it)
		}()
	}
	wg.Wait()
	return out
}

// semaphorePipe is the same bounded concurrency: limit workers, results in
// input order. There is no slot to release, so none can leak.
func semaphorePipe(items []int, limit int, work func(int) int) ([]int, error) {
	p := newPipeline(context.Background())
	out := pipeline.FanOutOrdered(p, pipeline.Generate(p, items...), limit,
		func(_ context.Context, it int) (int, error) { return work(it), nil })
	return pipeline.Collect(p, out)
}

// semaphoreWork doubles n, slowly, and records how many calls overlap.
func semaphoreWork(g *gauge) func(int) int {
	return func(n int) int {
		defer g.add(1)()
		time.Sleep(2 * time.Millisecond)
		return 2 * n
	}
}

var semaphoreItems = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func semaphoreDemoHand(w io.Writer) error {
	var g gauge
	out := semaphoreHand(semaphoreItems, 3, semaphoreWork(&g))
	fmt.Fprintf(w, "doubled: %v\n%s", out, limitLine(g.Max(), 3))
	return nil
}

func semaphoreDemoPipe(w io.Writer) error {
	var g gauge
	out, err := semaphorePipe(semaphoreItems, 3, semaphoreWork(&g))
	fmt.Fprintf(w, "doubled: %v\n%s", out, limitLine(g.Max(), 3))
	return err
}

// limitLine states whether a measured peak kept to its limit.
func limitLine(peak, limit int) string {
	if peak > limit {
		return fmt.Sprintf("LIMIT BROKEN: %d at once, limit %d\n", peak, limit)
	}
	return fmt.Sprintf("never more than %d at once\n", limit)
}
