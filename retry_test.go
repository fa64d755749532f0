package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

func noWait(int) time.Duration { return 0 }

var errNotFound = errors.New("not found")

func TestPermanent(t *testing.T) {
	t.Run("marks, wraps and is reached through", func(t *testing.T) {
		assert.NoError(t, pipeline.Permanent(nil))
		err := pipeline.Permanent(errNotFound)
		assert.True(t, pipeline.IsPermanent(err))
		assert.True(t, pipeline.IsPermanent(fmt.Errorf("get: %w", err)))
		assert.False(t, pipeline.IsPermanent(errNotFound))
		assert.ErrorIs(t, err, errNotFound)
		assert.Equal(t, errNotFound.Error(), err.Error())
	})

	t.Run("is not retried: one attempt, no retry counted", func(t *testing.T) {
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 10)
		var calls atomic.Int64
		err := pipeline.ForEach(p, three(p), 2, func(context.Context, int) error {
			calls.Add(1)
			return pipeline.Permanent(errNotFound)
		}, pipeline.Retry(5, noWait), dl.Option(), pipeline.Name("get"))
		require.NoError(t, err)
		assert.Equal(t, int64(3), calls.Load())
		assert.Zero(t, stageStats(t, p, "get").Retries)
		for l := range dl.Out() {
			assert.Equal(t, 1, l.Attempts)
			assert.ErrorIs(t, l.Err, errNotFound)
		}
	})
}

func TestRetryIf(t *testing.T) {
	transient := errors.New("transient")
	p := pipeline.New(context.Background())
	dl := pipeline.NewDeadLetters[int](p, 10)
	err := pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values([]int{1, 2})), 1, func(_ context.Context, v int) error {
		if v == 1 {
			return errNotFound
		}
		return transient
	}, pipeline.Retry(4, noWait), pipeline.RetryIf(func(err error) bool { return errors.Is(err, transient) }),
		dl.Option(), pipeline.Name("get"))
	require.NoError(t, err)
	attempts := map[int]int{}
	for l := range dl.Out() {
		attempts[l.Item] = l.Attempts
	}
	assert.Equal(t, map[int]int{1: 1, 2: 4}, attempts)
	assert.Equal(t, uint64(3), stageStats(t, p, "get").Retries)

	t.Run("a Permanent error is not retried whatever the predicate says", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var calls atomic.Int64
		err := pipeline.ForEach(p, three(p), 1, func(context.Context, int) error {
			calls.Add(1)
			return pipeline.Permanent(transient)
		}, pipeline.Retry(4, noWait), pipeline.RetryIf(func(error) bool { return true }),
			pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		require.NoError(t, err)
		assert.Equal(t, int64(3), calls.Load())
	})

	t.Run("a nil predicate is an invalid argument", func(t *testing.T) {
		p := pipeline.New(context.Background())
		assert.ErrorIs(t, pipeline.ForEach(p, three(p), 1, doNothing, pipeline.RetryIf(nil)), pipeline.ErrInvalidArgument)
	})
}

func TestRetryBudget(t *testing.T) {
	t.Run("a property: retries never exceed burst + ratio × calls", func(t *testing.T) {
		r := newRand(t)
		for round := 0; round < 20; round++ {
			n, workers, burst := r.IntN(300), 1+r.IntN(6), r.IntN(5)
			ratio := []float64{0, 0.1, 0.25, 0.5, 1}[r.IntN(5)]
			p := pipeline.New(context.Background())
			dl := pipeline.NewDeadLetters[int](p, n)
			err := pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values(ints(n))), workers, func(context.Context, int) error {
				return errOdd
			}, pipeline.Retry(5, noWait), pipeline.RetryBudget(ratio, burst), dl.Option(), pipeline.Name("get"))
			require.NoError(t, err)
			st := stageStats(t, p, "get")
			assert.LessOrEqualf(t, float64(st.Retries), float64(burst)+ratio*float64(n), "n %d burst %d ratio %v", n, burst, ratio)
			if workers == 1 && n > 0 {
				// One worker spends every retry it earns, at most 4 per item.
				assert.GreaterOrEqualf(t, float64(st.Retries), min(0.9*(float64(burst)+ratio*float64(n))-2, 4*float64(n)),
					"n %d burst %d ratio %v", n, burst, ratio)
			}
			total := 0
			for l := range dl.Out() {
				total += l.Attempts
			}
			assert.Equal(t, n+int(st.Retries), total, "the attempts in the dead letters are every call")
		}
	})

	t.Run("bad values are invalid arguments", func(t *testing.T) {
		for _, o := range []pipeline.StageOption{pipeline.RetryBudget(-0.1, 1), pipeline.RetryBudget(1.5, 1), pipeline.RetryBudget(0.5, -1)} {
			p := pipeline.New(context.Background())
			assert.ErrorIs(t, pipeline.ForEach(p, three(p), 1, doNothing, o), pipeline.ErrInvalidArgument)
		}
	})
}

func TestStrictTimeout(t *testing.T) {
	late := func(_ context.Context, v int) (int, error) {
		time.Sleep(30 * time.Millisecond) // ignores its context
		return v, nil
	}
	t.Run("by default a late success is a success", func(t *testing.T) {
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 3, late, pipeline.Timeout(time.Millisecond)))
		require.NoError(t, err)
		assert.Len(t, got, 3)
	})
	t.Run("strict: a late success times out and is retried", func(t *testing.T) {
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 3)
		got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 3, late,
			pipeline.Timeout(time.Millisecond), pipeline.StrictTimeout(), pipeline.Retry(2, noWait), dl.Option()))
		require.NoError(t, err)
		assert.Empty(t, got)
		for l := range dl.Out() {
			assert.ErrorIs(t, l.Err, context.DeadlineExceeded)
			assert.Equal(t, 2, l.Attempts)
		}
	})
	t.Run("strict: a prompt success is kept", func(t *testing.T) {
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 3, identity, pipeline.Timeout(time.Minute), pipeline.StrictTimeout()))
		require.NoError(t, err)
		assert.Len(t, got, 3)
	})
	t.Run("without a Timeout it is an invalid argument", func(t *testing.T) {
		p := pipeline.New(context.Background())
		assert.ErrorIs(t, pipeline.Drain(p, pipeline.FanOut(p, three(p), 1, identity, pipeline.StrictTimeout())), pipeline.ErrInvalidArgument)
	})
}

func TestOnError_IsSerialisedWithinTheStage(t *testing.T) {
	for _, kind := range []string{"fanout", "fanoutordered", "flatmap", "foreach"} {
		t.Run(kind, func(t *testing.T) {
			p := pipeline.New(context.Background())
			count := 0 // no lock: the handler's calls are serialised
			var g gauge
			var most atomic.Int64
			handler := pipeline.OnError(func(*pipeline.StageError) error {
				if n := g.enter(); n > most.Load() {
					most.Store(n)
				}
				count++
				time.Sleep(10 * time.Microsecond)
				g.leave()
				return nil
			})
			fail := func(context.Context, int) (int, error) { return 0, errOdd }
			in := pipeline.FromSeq(p, slices.Values(ints(200)))
			var err error
			switch kind {
			case "fanout":
				err = pipeline.Drain(p, pipeline.FanOut(p, in, 8, fail, handler))
			case "fanoutordered":
				err = pipeline.Drain(p, pipeline.FanOutOrdered(p, in, 8, fail, handler))
			case "flatmap":
				err = pipeline.Drain(p, pipeline.FlatMap(p, in, 8, func(context.Context, int, func(int) error) error { return errOdd }, handler))
			case "foreach":
				err = pipeline.ForEach(p, in, 8, func(context.Context, int) error { return errOdd }, handler)
			}
			require.NoError(t, err)
			assert.Equal(t, 200, count)
			assert.Equal(t, int64(1), most.Load())
		})
	}
}

func TestOnError_APanicInTheHandlerFailsThePipelineWithoutAHang(t *testing.T) {
	p := pipeline.New(context.Background())
	fail := func(context.Context, int) (int, error) { return 0, errOdd }
	var err error
	within(t, "a pipeline whose OnError handler panics", func() {
		err = pipeline.Drain(p, pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(100))), 8, fail,
			pipeline.OnError(func(*pipeline.StageError) error { panic("handler") })))
	})
	var pe *pipeline.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "handler", pe.Value)
}
