package pipeline_test

// Tests of merge.go.

import (
	"context"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestMerge: many inputs into one output.
func TestMerge(t *testing.T) {
	// Regression: Merge with more than 1<<20 inputs panicked after starting 1<<20 goroutines.
	t.Run("more than 1<<20 inputs is refused before any goroutine starts", func(t *testing.T) {
		p := pipeline.New(context.Background())
		ins := make([]<-chan int, 1<<20+1)
		before := runtime.NumGoroutine()
		out := pipeline.Merge(p, ins...)
		assert.LessOrEqual(t, runtime.NumGoroutine(), before)
		requireClosed(t, out)
		assert.ErrorIs(t, p.Wait(), pipeline.ErrInvalidArgument)
	})

	t.Run("sends every item of every input, each input in order", func(t *testing.T) {
		p := pipeline.New(context.Background())
		a := pipeline.Generate(p, ints(100)...)
		b := pipeline.Generate(p, ints(300)[100:200]...)
		c := pipeline.Generate(p, ints(300)[200:]...)
		got, err := pipeline.Collect(p, pipeline.Merge(p, a, b, c))
		require.NoError(t, err)
		// Items of one input keep their order.
		for lo := 0; lo < 300; lo += 100 {
			var part []int
			for _, v := range got {
				if v >= lo && v < lo+100 {
					part = append(part, v)
				}
			}
			assert.Equal(t, ints(300)[lo:lo+100], part)
		}
		slices.Sort(got)
		assert.Equal(t, ints(300), got)
	})

	t.Run("with no inputs is closed", func(t *testing.T) {
		p := pipeline.New(context.Background())
		requireClosed(t, pipeline.Merge[int](p))
		assert.NoError(t, p.Wait())
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Merge nil input", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Merge(p, three(p), nilInts)) },
				[]string{"merge#2", "input 1"}},
		})
	})
}
