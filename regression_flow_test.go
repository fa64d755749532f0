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
