package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// joined returns the errors err joins (err alone if it joins none).
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestCollectErrors(t *testing.T) {
	t.Run("runs to the end and joins every StageError, by stage then text", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		first := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(30))), 8, func(_ context.Context, v int) (int, error) {
			if v%5 == 0 {
				return 0, fmt.Errorf("first %02d: %w", v, errOdd)
			}
			return v, nil
		}, pipeline.Name("a"))
		second := pipeline.FanOut(p, first, 8, func(_ context.Context, v int) (int, error) {
			if v%7 == 0 {
				return 0, fmt.Errorf("second %02d", v)
			}
			return v, nil
		}, pipeline.Name("b"))
		got, err := pipeline.Collect(p, second)
		require.Error(t, err)
		assert.Len(t, got, 30-6-4) // 0, 5, …, 25 fail in a; 7, 14, 21, 28 in b
		assert.ErrorIs(t, err, errOdd)
		var texts []string
		for _, e := range joined(err) {
			var se *pipeline.StageError
			require.ErrorAs(t, e, &se)
			texts = append(texts, se.Stage+" "+se.Err.Error())
		}
		assert.Equal(t, []string{
			"a first 00: odd", "a first 05: odd", "a first 10: odd", "a first 15: odd", "a first 20: odd", "a first 25: odd",
			"b second 07", "b second 14", "b second 21", "b second 28",
		}, texts)
		assertConserved(t, p.Stats())
	})

	t.Run("a property: the same failures give the same error, however workers race", func(t *testing.T) {
		r := newRand(t)
		var want string
		for round := 0; round < 10; round++ {
			p := pipeline.New(context.Background(), pipeline.CollectErrors())
			out := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(100))), 1+r.IntN(8), func(_ context.Context, v int) (int, error) {
				jitter(v)
				if v%3 == 0 {
					return 0, fmt.Errorf("item %03d", v)
				}
				return v, nil
			})
			_, err := pipeline.Collect(p, out)
			require.Error(t, err)
			assert.Len(t, joined(err), 34)
			if round == 0 {
				want = err.Error()
			}
			assert.Equal(t, want, err.Error())
		}
	})

	t.Run("a source's error is collected and the rest runs on", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		boom := errors.New("boom")
		bad := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			_ = emit(1)
			return boom
		})
		got, err := pipeline.Collect(p, pipeline.Merge(p, bad, pipeline.FromSeq(p, slices.Values(ints(100)))))
		assert.Len(t, got, 101)
		assert.ErrorIs(t, err, boom)
	})

	t.Run("OnError returning nil and dead letters take the item first", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		dl := pipeline.NewDeadLetters[int](p, 100)
		a := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(10))), 2, failOdd, dl.Option())
		b := pipeline.FanOut(p, a, 2, failOdd, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		_, err := pipeline.Collect(p, b)
		assert.NoError(t, err)
		assert.Len(t, dl.Out(), 5)
	})

	t.Run("a panic still fails the pipeline, after what was collected", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		out := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(10))), 1, func(_ context.Context, v int) (int, error) {
			if v == 6 {
				panic("six")
			}
			return failOdd(context.Background(), v)
		})
		_, err := pipeline.Collect(p, out)
		var pe *pipeline.PanicError
		assert.ErrorAs(t, err, &pe)
		errs := joined(err)
		require.Len(t, errs, 4) // 1, 3, 5, then the panic
		assert.ErrorIs(t, errs[0], errOdd)
		assert.ErrorAs(t, errs[3], &pe)
	})

	t.Run("without failures the result is nil", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		assert.NoError(t, pipeline.Drain(p, pipeline.FanOut(p, three(p), 2, identity)))
	})
}
