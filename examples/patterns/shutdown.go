package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ec0f1147/pipeline"
)

// shutdownHand hands an endless stream of jobs to workers until quit is
// done, then stops taking new jobs, lets the workers finish every job
// already handed out, and returns how many jobs were handed out.
func shutdownHand(quit context.Context, workers int, handle func(int)) (emitted int) {
	jobs := make(chan int)
	go func() {
		// Closing jobs is how the workers learn there is no more work: they
		// finish what they hold and return. Making the workers watch quit
		// themselves would have them abandon the jobs they hold.
		defer close(jobs)
		for i := 0; ; i++ {
			select {
			case jobs <- i:
				emitted++
			case <-quit.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				handle(j)
			}
		}()
	}
	wg.Wait() // returning earlier would drop the jobs still being handled
	return emitted
}

// shutdownPipe is the same: when quit is done, Stop ends the source, and
// every job it emitted still reaches a worker before ForEach returns.
func shutdownPipe(quit context.Context, workers int, handle func(int)) (emitted int, err error) {
	// Not pipeline.New(quit): a cancelled pipeline drops the items in
	// flight. Stop drains them.
	p := newPipeline(context.Background())
	defer context.AfterFunc(quit, p.Stop)()
	jobs := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err // ErrStopped after Stop: a clean end
			}
			emitted++
		}
	})
	err = pipeline.ForEach(p, jobs, workers, func(_ context.Context, j int) error { handle(j); return nil })
	return emitted, err
}

func shutdownDemo(w io.Writer, run func(context.Context, int, func(int)) (int, error)) error {
	quit, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	var handled atomic.Int64
	emitted, err := run(quit, 3, func(int) {
		if handled.Add(1) == 20 {
			shutdown() // as a signal handler would
		}
	})
	n := int(handled.Load())
	fmt.Fprintf(w, "shut down after the 20th job: at least 20 handled: %t\n", n >= 20)
	if lost := emitted - n; lost == 0 {
		fmt.Fprintln(w, "every job handed out was handled: lost 0")
	} else {
		fmt.Fprintf(w, "LOST %d of %d jobs handed out\n", lost, emitted)
	}
	return err
}

func shutdownDemoHand(w io.Writer) error {
	return shutdownDemo(w, func(quit context.Context, workers int, handle func(int)) (int, error) {
		return shutdownHand(quit, workers, handle), nil
	})
}

func shutdownDemoPipe(w io.Writer) error { return shutdownDemo(w, shutdownPipe) }
