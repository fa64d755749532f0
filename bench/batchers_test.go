package bench

import (
	"context"
	"time"

	"github.com/ec0f1147/pipeline"
)

// A batcher groups the items of in, in order, into slices of at most size
// items, sent when full or, with maxWait > 0, when maxWait has passed since
// the batch's first item; the last partial batch is sent at the end (W5).
// The worker-pool libraries have no batching of their own, so the hand-written
// pipelines are the only peers.
type batcher struct {
	impl string
	run  func(ctx context.Context, in []int, size int, maxWait time.Duration) ([][]int, error)
}

// batchers are the W5 contenders, baseline first.
var batchers = []batcher{
	{"handctx", handCtxBatch},
	{"handnoctx", handNoCtxBatch},
	{"pipeline", pipelineBatch},
}

// handCtxBatch is the hand-written batching pipeline: a source and a batching
// stage on unbuffered channels, every send in a select with ctx.Done(). With
// maxWait it waits on a timer, armed when a batch gets its first item, in the
// same select as the input.
func handCtxBatch(ctx context.Context, in []int, size int, maxWait time.Duration) ([][]int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	src := make(chan int)
	go func() {
		defer close(src)
		for _, x := range in {
			select {
			case src <- x:
			case <-ctx.Done():
				return
			}
		}
	}()

	batches := make(chan []int)
	send := func(b []int) bool {
		select {
		case batches <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if maxWait <= 0 {
		go func() {
			defer close(batches)
			var b []int
			for x := range src {
				if b == nil {
					b = make([]int, 0, size)
				}
				b = append(b, x)
				if len(b) == size {
					if !send(b) {
						return
					}
					b = nil
				}
			}
			if b != nil {
				send(b)
			}
		}()
	} else {
		go func() {
			defer close(batches)
			timer := time.NewTimer(maxWait)
			defer timer.Stop()
			timer.Stop()
			var b []int
			var expired <-chan time.Time
			for {
				select {
				case x, ok := <-src:
					if !ok {
						if b != nil {
							send(b)
						}
						return
					}
					if b == nil {
						b = make([]int, 0, size)
						timer.Reset(maxWait)
						expired = timer.C
					}
					b = append(b, x)
					if len(b) < size {
						continue
					}
				case <-expired:
				case <-ctx.Done():
					return
				}
				timer.Stop()
				expired = nil
				if !send(b) {
					return
				}
				b = nil
			}
		}()
	}

	var out [][]int
	for b := range batches {
		out = append(out, b)
	}
	return out, context.Cause(ctx)
}

// handNoCtxBatch is handCtxBatch without a context: plain sends.
func handNoCtxBatch(_ context.Context, in []int, size int, maxWait time.Duration) ([][]int, error) {
	src := make(chan int)
	go func() {
		defer close(src)
		for _, x := range in {
			src <- x
		}
	}()

	batches := make(chan []int)
	if maxWait <= 0 {
		go func() {
			defer close(batches)
			var b []int
			for x := range src {
				if b == nil {
					b = make([]int, 0, size)
				}
				b = append(b, x)
				if len(b) == size {
					batches <- b
					b = nil
				}
			}
			if b != nil {
				batches <- b
			}
		}()
	} else {
		go func() {
			defer close(batches)
			timer := time.NewTimer(maxWait)
			defer timer.Stop()
			timer.Stop()
			var b []int
			var expired <-chan time.Time
			for {
				select {
				case x, ok := <-src:
					if !ok {
						if b != nil {
							batches <- b
						}
						return
					}
					if b == nil {
						b = make([]int, 0, size)
						timer.Reset(maxWait)
						expired = timer.C
					}
					b = append(b, x)
					if len(b) < size {
						continue
					}
				case <-expired:
				}
				timer.Stop()
				expired = nil
				batches <- b
				b = nil
			}
		}()
	}

	var out [][]int
	for b := range batches {
		out = append(out, b)
	}
	return out, nil
}

// pipelineBatch is the library: Generate → Batch → Collect.
func pipelineBatch(ctx context.Context, in []int, size int, maxWait time.Duration) ([][]int, error) {
	p := pipeline.New(ctx)
	return pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, in...), size, maxWait))
}
