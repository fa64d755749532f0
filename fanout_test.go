package pipeline_test

// Tests of fanout.go: FanOut and FlatMap. FanOutOrdered is in
// ordered_test.go.

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestFanOut: a function on every item, by a number of workers.
func TestFanOut(t *testing.T) {
	t.Run("runs exactly workers calls at once", func(t *testing.T) {
		assertWorkersBound(t, func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.Drain(p, pipeline.FanOut(p, in, w, func(ctx context.Context, v int) (int, error) {
				call(ctx)
				return v, nil
			}))
		})
	})

	t.Run("items OnError skips are counted as errors", func(t *testing.T) {
		p := pipeline.New(context.Background())
		bad := errors.New("bad item")
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(100)...), 4, func(_ context.Context, v int) (int, error) {
			if v%4 == 0 {
				return 0, bad
			}
			return v, nil
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		st := p.Stats()[1]
		assert.Equal(t, uint64(100), st.In)
		assert.Equal(t, uint64(75), st.Out)
		assert.Equal(t, uint64(25), st.Errors)
		assert.Equal(t, st.In, st.Out+st.Errors)
		assert.Len(t, got, 75)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FanOut workers 0", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FanOut(p, three(p), 0, identity)) },
				[]string{"fanout#2", "workers"}},
			{"FanOut workers negative", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FanOut(p, three(p), -3, identity)) },
				[]string{"fanout#2", "workers"}},
			{"FanOut nil fn", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FanOut(p, three(p), 2, nilFn)) },
				[]string{"fanout#2", "fn"}},
			{"FanOut nil in", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FanOut(p, nilInts, 2, identity)) },
				[]string{"fanout#1", "input"}},
		})
	})
}

// TestFlatMap: a function emitting any number of results per item.
func TestFlatMap(t *testing.T) {
	t.Run("runs exactly workers calls at once", func(t *testing.T) {
		assertWorkersBound(t, func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.Drain(p, pipeline.FlatMap(p, in, w, func(ctx context.Context, v int, emit func(int) error) error {
				call(ctx)
				return emit(v)
			}))
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FlatMap workers 0", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FlatMap(p, three(p), 0, emitAsIs)) },
				[]string{"flatmap#2", "workers"}},
			{"FlatMap workers negative", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FlatMap(p, three(p), -7, emitAsIs)) },
				[]string{"flatmap#2", "workers"}},
			{"FlatMap nil fn", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FlatMap(p, three(p), 1, nilFlat)) },
				[]string{"flatmap#2", "fn"}},
			{"FlatMap nil in", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FlatMap(p, nilInts, 1, emitAsIs)) },
				[]string{"flatmap#1", "input"}},
		})
	})
}
