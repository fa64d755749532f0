package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// skipAll is an OnError option that skips every failed item.
var skipAll = pipeline.OnError(func(*pipeline.StageError) error { return nil })

// waitState polls b until it reports want, failing after hangBound.
func waitState(t *testing.T, b *pipeline.CircuitBreaker, want pipeline.BreakerState) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for b.State() != want {
		require.Truef(t, time.Now().Before(deadline), "breaker still %v, want %v", b.State(), want)
		time.Sleep(time.Millisecond)
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Run("opens after Failures in the window; then calls fail fast with ErrOpen", func(t *testing.T) {
		b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 3, Window: time.Hour, CoolDown: time.Hour})
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 10)
		var calls atomic.Int64
		err := pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values(ints(10))), 1, func(context.Context, int) error {
			calls.Add(1)
			return errOdd
		}, pipeline.Breaker(b), pipeline.Retry(3, noWait), dl.Option(), pipeline.Name("get"))
		require.NoError(t, err)
		assert.Equal(t, int64(3), calls.Load(), "three attempts of item 0 open it")
		open := 0
		for l := range dl.Out() {
			if errors.Is(l.Err, pipeline.ErrOpen) {
				open++
				assert.Equal(t, 1, l.Attempts, "ErrOpen is not retried")
			}
		}
		assert.Equal(t, 9, open)
		st := stageStats(t, p, "get")
		assert.Equal(t, uint64(9), st.Rejected)
		assert.Equal(t, pipeline.BreakerOpen, st.Breaker)
		assert.Equal(t, uint64(1), st.BreakerOpened)
		assert.Equal(t, pipeline.BreakerCounts{Opened: 1, Rejected: 9}, b.Counts())
		assert.Equal(t, pipeline.BreakerOpen, b.State())
	})

	t.Run("after the cool-down a probe decides: success closes, failure reopens", func(t *testing.T) {
		b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 1, Window: time.Hour, CoolDown: 20 * time.Millisecond})
		var fail atomic.Bool
		fail.Store(true)
		run := func(n int) {
			p := pipeline.New(context.Background())
			require.NoError(t, pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values(ints(n))), 1, func(context.Context, int) error {
				if fail.Load() {
					return errOdd
				}
				return nil
			}, pipeline.Breaker(b), skipAll))
		}
		run(1)
		assert.Equal(t, pipeline.BreakerOpen, b.State())
		waitState(t, b, pipeline.BreakerHalfOpen)
		run(1) // the probe fails
		assert.Equal(t, pipeline.BreakerOpen, b.State())
		assert.Equal(t, pipeline.BreakerCounts{Opened: 2, HalfOpened: 1}, b.Counts())
		waitState(t, b, pipeline.BreakerHalfOpen)
		fail.Store(false)
		run(3) // the probe succeeds, and the rest run
		assert.Equal(t, pipeline.BreakerClosed, b.State())
		assert.Equal(t, pipeline.BreakerCounts{Opened: 2, HalfOpened: 2, Closed: 1}, b.Counts())
	})

	t.Run("while the probe runs, other calls fail fast", func(t *testing.T) {
		b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 1, Window: time.Hour, CoolDown: time.Millisecond})
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.ForEach(p, three(p), 1, func(context.Context, int) error { return errOdd }, pipeline.Breaker(b), skipAll))
		waitState(t, b, pipeline.BreakerHalfOpen)
		release := make(chan struct{})
		p = pipeline.New(context.Background())
		var rejected atomic.Int64
		err := pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values(ints(5))), 5, func(_ context.Context, v int) error {
			<-release // only the probe gets here
			return nil
		}, pipeline.Breaker(b), pipeline.OnError(func(se *pipeline.StageError) error {
			if errors.Is(se, pipeline.ErrOpen) && rejected.Add(1) == 4 {
				close(release)
			}
			return nil
		}))
		require.NoError(t, err)
		assert.Equal(t, int64(4), rejected.Load())
		assert.Equal(t, pipeline.BreakerClosed, b.State())
	})

	t.Run("a failure ratio opens it once MinCalls ended", func(t *testing.T) {
		b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Ratio: 0.5, MinCalls: 4, Window: time.Hour, CoolDown: time.Hour})
		p := pipeline.New(context.Background())
		var calls atomic.Int64
		// items 0..9: even ones fail; after 4 calls (2 failed) it opens.
		require.NoError(t, pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values(ints(10))), 1, func(_ context.Context, v int) error {
			calls.Add(1)
			if v%2 == 0 {
				return errOdd
			}
			return nil
		}, pipeline.Breaker(b), skipAll, pipeline.Name("get")))
		assert.Equal(t, int64(5), calls.Load(), "calls 0..3 are below the ratio until item 4 fails")
		assert.Equal(t, uint64(5), stageStats(t, p, "get").Rejected)
	})

	t.Run("IsFailure decides what counts; shared by two stages", func(t *testing.T) {
		b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 2, Window: time.Hour, CoolDown: time.Hour,
			IsFailure: func(err error) bool { return !pipeline.IsPermanent(err) }})
		p := pipeline.New(context.Background())
		a := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(20))), 1, func(_ context.Context, v int) (int, error) {
			return 0, pipeline.Permanent(errNotFound) // a 404 says the server is up
		}, pipeline.Breaker(b), skipAll, pipeline.Name("a"))
		require.NoError(t, pipeline.Drain(p, a))
		assert.Equal(t, pipeline.BreakerClosed, b.State())

		p = pipeline.New(context.Background())
		first := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(2))), 1, func(context.Context, int) (int, error) {
			return 0, errOdd
		}, pipeline.Breaker(b), skipAll, pipeline.Name("first"))
		var calls atomic.Int64
		second := pipeline.FanOut(p, first, 1, identity, pipeline.Name("second"))
		err := pipeline.ForEach(p, pipeline.Merge(p, second, pipeline.Generate(p, 1)), 1, func(context.Context, int) error {
			calls.Add(1)
			return nil
		}, pipeline.Breaker(b), skipAll, pipeline.Name("third"))
		require.NoError(t, err)
		assert.Equal(t, pipeline.BreakerOpen, b.State())
		assert.Equal(t, uint64(1), stageStats(t, p, "third").Rejected+uint64(calls.Load()))
		assert.Equal(t, pipeline.BreakerOpen, stageStats(t, p, "first").Breaker)
	})

	t.Run("without OnError or dead letters, failing fast fails the pipeline", func(t *testing.T) {
		b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 1, Window: time.Hour, CoolDown: time.Hour})
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.ForEach(p, three(p), 1, func(context.Context, int) error { return errOdd }, pipeline.Breaker(b), skipAll))
		p = pipeline.New(context.Background())
		err := pipeline.ForEach(p, three(p), 1, doNothing, pipeline.Breaker(b))
		var se *pipeline.StageError
		require.ErrorAs(t, err, &se)
		assert.ErrorIs(t, err, pipeline.ErrOpen)
		assert.Equal(t, 1, se.Item)
	})

	t.Run("bad configs and a nil breaker are invalid arguments", func(t *testing.T) {
		for _, cfg := range []pipeline.BreakerConfig{
			{Failures: 1, CoolDown: time.Second},
			{Failures: 1, Window: time.Second},
			{Window: time.Second, CoolDown: time.Second},
			{Ratio: 1.5, Window: time.Second, CoolDown: time.Second},
		} {
			p := pipeline.New(context.Background())
			err := pipeline.ForEach(p, three(p), 1, doNothing, pipeline.Breaker(pipeline.NewCircuitBreaker(cfg)))
			assert.ErrorIsf(t, err, pipeline.ErrInvalidArgument, "%+v", cfg)
		}
		p := pipeline.New(context.Background())
		assert.ErrorIs(t, pipeline.ForEach(p, three(p), 1, doNothing, pipeline.Breaker(nil)), pipeline.ErrInvalidArgument)
	})

	t.Run("states name themselves", func(t *testing.T) {
		assert.Equal(t, "closed", pipeline.BreakerClosed.String())
		assert.Equal(t, "open", pipeline.BreakerOpen.String())
		assert.Equal(t, "half-open", pipeline.BreakerHalfOpen.String())
		assert.Equal(t, "BreakerState(9)", pipeline.BreakerState(9).String())
	})
}
