//go:build bugrepro

package pipeline_test

// Library bugs found while testing the flow-control stages (issue 3). Each
// test states the documented behaviour and fails on the current code.
// Run with: go test -tags bugrepro -run TestBugFlow -race .

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Batch's doc: "On cancel the partial batch is discarded." When the
// cancellation closes the batch's input, the close path flushes the partial
// batch without looking at the context, and a buffered output takes it.
func TestBugFlow_BatchSendsItsPartialBatchAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := pipeline.New(ctx)
	src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		_ = emit(1)
		_ = emit(2)
		<-ctx.Done()
		return ctx.Err()
	})
	out := pipeline.Batch(p, src, 10, time.Hour)
	require.Eventually(t, func() bool { return p.Stats()[1].In == 2 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, p.Wait(), context.Canceled)
	b, ok := <-out
	assert.False(t, ok, "a batch was sent after cancel: %v", b)
}

// Limiter.SetLimit shrinking below the weight of a call already waiting in
// Weighted: the waiter can never be served, and as the queue is first come,
// first served it blocks every later call too. The pipeline hangs until its
// context ends instead of failing the item as Weighted documents for a weight
// above the limit ("it could never run").
func TestBugFlow_SetLimitBelowAWaitingWeightHangs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l := pipeline.NewLimiter(4)
	gate := make(chan struct{})
	p := pipeline.New(ctx)
	next := make(chan struct{})
	src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		if err := emit(4); err != nil {
			return err
		}
		select { // item 3 only once item 4 holds every slot
		case <-next:
		case <-ctx.Done():
			return ctx.Err()
		}
		return emit(3)
	})
	out := pipeline.FanOut(p, src, 2, pipeline.Weighted(l,
		func(v int) int { return v },
		func(ctx context.Context, v int) (int, error) {
			if v == 4 {
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			return v, nil
		}))
	require.Eventually(t, func() bool { return l.InUse() == 4 }, time.Second, time.Millisecond)
	close(next)
	require.Eventually(t, func() bool { return p.Stats()[1].Busy == 2 },
		time.Second, time.Millisecond)
	l.SetLimit(2)
	close(gate)
	_, err := pipeline.Collect(p, out)
	assert.ErrorIs(t, err, pipeline.ErrInvalidArgument, "item 3 can never fit in 2 slots")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the pipeline hung until its deadline")
}

// Weighted and Limit on the same limiter: the doc says a call then holds
// 1 + weight slots. With weight == limit that can never fit, but the check in
// acquire compares the weight alone with the limit, so the call holds its
// Limit slot and waits forever for the rest: a self-deadlock until the
// context ends. (With weight + 1 <= limit and several workers, workers that
// each hold their Limit slot while waiting for their weight can deadlock
// each other the same way.)
func TestBugFlow_WeightedWithLimitOnTheSameLimiterDeadlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l := pipeline.NewLimiter(2)
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, pipeline.Weighted(l,
		func(int) int { return 2 },
		func(_ context.Context, v int) (int, error) { return v, nil }), pipeline.Limit(l))
	_, err := pipeline.Collect(p, out)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the pipeline hung until its deadline")
	assert.ErrorIs(t, err, pipeline.ErrInvalidArgument, "1 + 2 slots never fit in 2")
}
