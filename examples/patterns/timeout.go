package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
	"golang.org/x/sync/errgroup"
)

// timeoutHand runs work on every job, three at a time, giving each call d.
// A call that runs out of time is reported, the others' results returned.
func timeoutHand(ctx context.Context, jobs []int, d time.Duration, work func(context.Context, int) (int, error)) (results, timedOut []int, err error) {
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, j := range jobs {
		g.Go(func() error {
			// The deadline goes into the call's context, and work watches
			// it. Racing the call against time.After instead abandons a
			// goroutine that goes on running, and that blocks forever if
			// it then sends its result on an unbuffered channel.
			cctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			r, err := work(cctx, j)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				timedOut = append(timedOut, j)
			case err != nil:
				return err
			default:
				results = append(results, r)
			}
			return nil
		})
	}
	err = g.Wait()
	slices.Sort(results)
	slices.Sort(timedOut)
	return results, timedOut, err
}

// timeoutPipe is the same: Timeout gives each call its deadline, OnError
// sets the timed-out jobs aside and lets any other error fail the run.
func timeoutPipe(ctx context.Context, jobs []int, d time.Duration, work func(context.Context, int) (int, error)) (results, timedOut []int, err error) {
	var mu sync.Mutex
	p := newPipeline(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, jobs...), 3, work,
		pipeline.Timeout(d),
		pipeline.OnError(func(e *pipeline.StageError) error {
			if !errors.Is(e, context.DeadlineExceeded) {
				return e
			}
			mu.Lock()
			defer mu.Unlock()
			timedOut = append(timedOut, e.Item.(int))
			return nil
		}))
	results, err = pipeline.Collect(p, out)
	slices.Sort(results)
	slices.Sort(timedOut)
	return results, timedOut, err
}

// timeoutWork multiplies by ten, except that jobs 3 and 7 hang until their
// context ends.
func timeoutWork(ctx context.Context, j int) (int, error) {
	if j == 3 || j == 7 {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return 10 * j, nil
}

func timeoutDemo(w io.Writer, run func(context.Context, []int, time.Duration, func(context.Context, int) (int, error)) ([]int, []int, error)) error {
	results, timedOut, err := run(context.Background(), []int{1, 2, 3, 4, 5, 6, 7, 8}, 100*time.Millisecond, timeoutWork)
	fmt.Fprintf(w, "results %v\ntimed out %v\n", results, timedOut)
	return err
}

func timeoutDemoHand(w io.Writer) error { return timeoutDemo(w, timeoutHand) }
func timeoutDemoPipe(w io.Writer) error { return timeoutDemo(w, timeoutPipe) }
