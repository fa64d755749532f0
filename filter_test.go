package pipeline_test

// Tests of filter.go.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestFilter: keeping the items a predicate accepts.
func TestFilter(t *testing.T) {
	t.Run("counts the items it drops", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.Filter(p, pipeline.Generate(p, ints(100)...), func(v int) bool { return v%2 == 0 })
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		st := p.Stats()[1]
		assert.Equal(t, uint64(100), st.In)
		assert.Equal(t, uint64(50), st.Out)
		assert.Equal(t, uint64(50), st.Dropped)
		assert.Equal(t, st.In, st.Out+st.Dropped)
		assert.Len(t, got, 50)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Filter nil keep", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Filter(p, three(p), nil)) },
				[]string{"filter#2", "keep"}},
			{"Filter nil in", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.Filter(p, nilInts, func(int) bool { return true }))
			}, []string{"filter#1", "input"}},
			{"Filter with Timeout", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.Filter(p, three(p), func(int) bool { return true }, pipeline.Timeout(time.Second)))
			}, []string{"filter#2", "Timeout"}},
		})
	})

	// Regression: Filter's error for a nil predicate did not name its argument, keep.
	// Filter's invalid-argument error for a nil predicate names its argument, keep.
	t.Run("a nil keep's error names keep", func(t *testing.T) {
		p := pipeline.New(context.Background())
		pipeline.Filter(p, pipeline.Generate(p, 1), nil)
		err := p.Wait()
		require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "keep")
	})
}
