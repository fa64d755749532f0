package pipeline_test

// Regression tests for library bugs found while testing the flow-control
// stages (issue 3). Each states the documented behaviour.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Batch's doc: "On cancel the partial batch is discarded", also when the
// cancellation is seen as the input closing.
func TestBatch_DiscardsPartialBatchOnCancel(t *testing.T) {
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
// Weighted: the waiter can never be served and, the queue being first come,
// first served, would block every later call; it fails instead, as Weighted
// documents for a weight above the limit.
func TestLimiter_SetLimitBelowAWaitingWeightFailsTheItem(t *testing.T) {
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

// Weighted and Limit on the same limiter: a call holding its Limit slot while
// waiting for its weight could deadlock (alone, or with other workers doing
// the same), so the combination is rejected with ErrInvalidArgument.
func TestWeighted_WithLimitOnTheSameLimiterIsRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l := pipeline.NewLimiter(2)
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, pipeline.Weighted(l,
		func(int) int { return 2 },
		func(_ context.Context, v int) (int, error) { return v, nil }), pipeline.Limit(l))
	_, err := pipeline.Collect(p, out)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the pipeline hung until its deadline")
	assert.ErrorIs(t, err, pipeline.ErrInvalidArgument, "Weighted with Limit on the same limiter is rejected")
}
