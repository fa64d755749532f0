package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

// backpressureHand sends items to a slow consumer through a queue of n: once
// the queue is full, the send blocks and the producer waits for the
// consumer. sent is called after each send.
func backpressureHand(items []int, n int, sent, consume func(int)) {
	queue := make(chan int, n) // bounded: a slice or a goroutine per item would not be
	go func() {
		defer close(queue)
		for _, v := range items {
			queue <- v // blocks while the queue is full: backpressure
			sent(v)
		}
	}()
	for v := range queue {
		consume(v)
	}
}

// backpressurePipe is the same: Buffer holds n items, every other channel
// is unbuffered, so emit blocks once the consumer is n+2 items behind (the
// queue, the item the Buffer stage holds and the one the consumer has just
// taken).
func backpressurePipe(items []int, n int, sent, consume func(int)) error {
	p := newPipeline(context.Background(), pipeline.DefaultBuffer(0))
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for _, v := range items {
			if err := emit(v); err != nil {
				return err
			}
			sent(v)
		}
		return nil
	})
	return pipeline.ForEach(p, pipeline.Buffer(p, src, n), 1,
		func(_ context.Context, v int) error { consume(v); return nil })
}

// lag measures how far a producer runs ahead of its consumer.
type lag struct {
	mu                   sync.Mutex
	sent, consumed, most int
}

func (l *lag) onSent(int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	l.most = max(l.most, l.sent-l.consumed)
}

func (l *lag) onConsume(int) {
	l.mu.Lock()
	l.consumed++
	l.mu.Unlock()
	time.Sleep(time.Millisecond) // a slow consumer
}

const backpressureQueue = 4

func backpressureDemo(w io.Writer, run func([]int, int, func(int), func(int)) error) error {
	items := make([]int, 50)
	var l lag
	err := run(items, backpressureQueue, l.onSent, l.onConsume)
	fmt.Fprintf(w, "sent %d, consumed %d\n", l.sent, l.consumed)
	// The queue, and an item or two held in hand on the way.
	if bound := backpressureQueue + 2; l.most <= bound {
		fmt.Fprintf(w, "the producer waited: never more than %d items ahead\n", bound)
	} else {
		fmt.Fprintf(w, "NO BACKPRESSURE: %d items ahead\n", l.most)
	}
	return err
}

func backpressureDemoHand(w io.Writer) error {
	return backpressureDemo(w, func(items []int, n int, sent, consume func(int)) error {
		backpressureHand(items, n, sent, consume)
		return nil
	})
}

func backpressureDemoPipe(w io.Writer) error { return backpressureDemo(w, backpressurePipe) }
