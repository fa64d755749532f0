package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/ec0f1147/pipeline"
)

// workerPoolHand squares every job with a fixed number of workers that read
// one jobs channel and write one results channel.
func workerPoolHand(jobs []int, workers int) []int {
	jobsCh := make(chan int)
	results := make(chan int)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobsCh {
				results <- j * j
			}
		}()
	}
	// Feed the jobs from their own goroutine: fed from here, the first
	// send would block once every worker is stuck sending a result that
	// nobody reads yet.
	go func() {
		defer close(jobsCh)
		for _, j := range jobs {
			jobsCh <- j
		}
	}()
	// Close results once every worker is done, from yet another goroutine:
	// calling wg.Wait() here, before reading, deadlocks the same way.
	go func() {
		wg.Wait()
		close(results)
	}()

	var out []int
	for r := range results {
		out = append(out, r)
	}
	return out
}

// workerPoolPipe is the same pool: FanOut starts the workers, closes every
// channel at the right time, and the sink reads while they work.
func workerPoolPipe(jobs []int, workers int) ([]int, error) {
	p := newPipeline(context.Background())
	squares := pipeline.FanOut(p, pipeline.Generate(p, jobs...), workers,
		func(_ context.Context, j int) (int, error) { return j * j, nil })
	return pipeline.Collect(p, squares)
}

var workerPoolJobs = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}

func workerPoolDemoHand(w io.Writer) error {
	out := workerPoolHand(workerPoolJobs, 3)
	slices.Sort(out)
	fmt.Fprintf(w, "squares of 1..10 with 3 workers: %v\n", out)
	return nil
}

func workerPoolDemoPipe(w io.Writer) error {
	out, err := workerPoolPipe(workerPoolJobs, 3)
	slices.Sort(out)
	fmt.Fprintf(w, "squares of 1..10 with 3 workers: %v\n", out)
	return err
}
