package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ec0f1147/pipeline"
)

// droppingHand offers a burst of items to a consumer that is busy until
// the burst is over, through a queue of n; the producer never waits: an
// item that finds the queue full is dropped. It returns how many were.
func droppingHand(burst []int, n int, consume func(int)) (dropped int) {
	queue := make(chan int, n)
	busy := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-busy // the consumer is busy with something else during the burst
		for v := range queue {
			consume(v)
		}
	}()
	for _, v := range burst {
		select {
		case queue <- v:
		default:
			dropped++ // count it: a drop nobody counts is work lost without a trace
		}
	}
	close(busy)
	close(queue)
	<-done
	return dropped
}

// droppingPipe is the same: DropOnFull never blocks the source, and counts
// every item it sheds in its stage's Stats.
func droppingPipe(burst []int, n int, consume func(int)) (dropped int, err error) {
	p := newPipeline(context.Background(), pipeline.DefaultBuffer(0))
	busy := make(chan struct{})
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		defer close(busy)
		for _, v := range burst {
			if err := emit(v); err != nil {
				return err
			}
		}
		return nil
	})
	shed := pipeline.DropOnFull(p, src, n, pipeline.Name("shed"))
	err = pipeline.ForEach(p, shed, 1, func(_ context.Context, v int) error {
		<-busy
		consume(v)
		return nil
	})
	for _, st := range p.Stats() {
		if st.Name == "shed" {
			dropped = int(st.Dropped)
		}
	}
	return dropped, err
}

const droppingQueue = 10

func droppingDemo(w io.Writer, run func([]int, int, func(int)) (int, error)) error {
	burst := make([]int, 100)
	delivered := 0
	dropped, err := run(burst, droppingQueue, func(int) { delivered++ })
	fmt.Fprintf(w, "burst of %d into a queue of %d: %d delivered, %d dropped\n", len(burst), droppingQueue, delivered, dropped)
	if delivered+dropped == len(burst) {
		fmt.Fprintln(w, "every item delivered or counted as dropped")
	} else {
		fmt.Fprintf(w, "%d ITEMS UNACCOUNTED FOR\n", len(burst)-delivered-dropped)
	}
	return err
}

func droppingDemoHand(w io.Writer) error {
	return droppingDemo(w, func(burst []int, n int, consume func(int)) (int, error) {
		return droppingHand(burst, n, consume), nil
	})
}

func droppingDemoPipe(w io.Writer) error { return droppingDemo(w, droppingPipe) }
