package pipeline_test

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

func TestAllErr(t *testing.T) {
	t.Run("yields every item, then the pipeline's error", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var items []int
		var errs []error
		for v, err := range pipeline.AllErr(p, pipeline.FanOutOrdered(p, pipeline.FromSeq(p, slices.Values(ints(10))), 1, failOdd)) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			items = append(items, v)
		}
		assert.Equal(t, []int{0}, items) // item 1 fails the pipeline
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], errOdd)
		assert.Equal(t, errs[0], p.Wait())
	})

	t.Run("no error pair when nothing failed", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var items []int
		for v, err := range pipeline.AllErr(p, three(p)) {
			require.NoError(t, err)
			items = append(items, v)
		}
		assert.Equal(t, []int{1, 2, 3}, items)
	})

	t.Run("under CollectErrors the last pair holds every error", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		n, failures := 0, 0
		for _, err := range pipeline.AllErr(p, pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(10))), 3, failOdd)) {
			if err != nil {
				failures = len(joined(err))
				continue
			}
			n++
		}
		assert.Equal(t, 5, n)
		assert.Equal(t, 5, failures)
	})

	t.Run("break is an early exit: no error, every goroutine gone", func(t *testing.T) {
		p := pipeline.New(context.Background())
		for v, err := range pipeline.AllErr(p, counter(p, nil)) {
			require.NoError(t, err)
			if v == 5 {
				break
			}
		}
		requireDone(t, p)
		assert.NoError(t, p.Wait())
	})

	t.Run("a nil input yields only the error", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var errs []error
		for _, err := range pipeline.AllErr[int](p, nil) {
			errs = append(errs, err)
		}
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], pipeline.ErrInvalidArgument)
	})
}
