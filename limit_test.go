package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

func TestLimiter_CapsConcurrencyAcrossStagesSharingIt(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			defer cancel()
			l := pipeline.NewLimiter(n)
			var g gauge
			reached := make(chan struct{})
			var once sync.Once
			fn := reach(&g, int64(n), reached, &once)

			p := pipeline.New(ctx)
			a := pipeline.FanOut(p, pipeline.Generate(p, flowInts(300)...), 8, fn, pipeline.Limit(l), pipeline.Name("a"))
			b := pipeline.FanOut(p, a, 8, fn, pipeline.Limit(l), pipeline.Name("b"))
			got, err := pipeline.Collect(p, b)
			require.NoError(t, err, "the shared limit was never reached")
			assert.Len(t, got, 300)
			assert.Equal(t, int64(n), g.peak.Load(), "peak concurrency across both stages")
			assert.Zero(t, l.InUse(), "every slot was given back")
		})
	}
}

func TestLimiter_StageRunsAtMostItsWorkersUnderABiggerLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	l := pipeline.NewLimiter(10)
	var g gauge
	reached := make(chan struct{})
	var once sync.Once
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, flowInts(100)...), 3, reach(&g, 3, reached, &once), pipeline.Limit(l))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, 100)
	assert.Equal(t, int64(3), g.peak.Load())
}

func TestLimiter_WorksAcrossTwoPipelines(t *testing.T) {
	const n = 2
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	l := pipeline.NewLimiter(n)
	var g gauge
	reached := make(chan struct{})
	var once sync.Once
	fn := reach(&g, n, reached, &once)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	counts := make([]int, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := pipeline.New(ctx)
			got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, flowInts(100)...), 4, fn, pipeline.Limit(l)))
			counts[i], errs[i] = len(got), err
		}()
	}
	wg.Wait()
	for i := range errs {
		require.NoError(t, errs[i])
		assert.Equal(t, 100, counts[i])
	}
	assert.Equal(t, int64(n), g.peak.Load())
	assert.Zero(t, l.InUse())
}

func TestLimiter_SetLimitGrowingStartsWaitingCallsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	l := pipeline.NewLimiter(2)
	var g gauge
	release := make(chan struct{})
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, flowInts(20)...), 8, func(ctx context.Context, v int) (int, error) {
		defer g.leave()
		g.enter()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return v, nil
	}, pipeline.Limit(l))

	require.Eventually(t, func() bool { return g.cur.Load() == 2 }, hangBound, time.Millisecond)
	assert.Equal(t, 2, l.InUse())
	l.SetLimit(5)
	assert.Equal(t, 5, l.Limit())
	require.Eventually(t, func() bool { return g.cur.Load() == 5 }, hangBound, time.Millisecond,
		"waiting calls did not start when the limit grew")
	assert.Equal(t, 5, l.InUse())
	assert.Never(t, func() bool { return g.cur.Load() > 5 }, 20*time.Millisecond, time.Millisecond)

	close(release)
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, 20)
	assert.Equal(t, int64(5), g.peak.Load())
}

func TestLimiter_SetLimitShrinkingLetsRunningCallsFinishAndNewOnesObey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	l := pipeline.NewLimiter(4)
	var all, late gauge
	var started atomic.Int64
	release := make(chan struct{})
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, flowInts(30)...), 8, func(ctx context.Context, v int) (int, error) {
		defer all.leave()
		all.enter()
		if started.Add(1) <= 4 { // the calls running when the limit shrinks
			select {
			case <-release:
			case <-ctx.Done():
			}
			return v, nil
		}
		defer late.leave()
		late.enter()
		time.Sleep(100 * time.Microsecond)
		return v, nil
	}, pipeline.Limit(l))

	require.Eventually(t, func() bool { return all.cur.Load() == 4 }, hangBound, time.Millisecond)
	l.SetLimit(1)
	assert.Equal(t, 1, l.Limit())
	assert.Equal(t, 4, l.InUse(), "running calls keep their slots")
	assert.Never(t, func() bool { return all.cur.Load() != 4 }, 20*time.Millisecond, time.Millisecond,
		"running calls go on, and no new one starts")

	close(release)
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, 30)
	assert.Equal(t, int64(26), started.Load()-4)
	assert.Equal(t, int64(1), late.peak.Load(), "calls after the shrink obey the new limit")
	assert.Equal(t, int64(4), all.peak.Load())
}

func TestLimiter_SetLimitBelowOneIsIgnored(t *testing.T) {
	l := pipeline.NewLimiter(3)
	l.SetLimit(0)
	assert.Equal(t, 3, l.Limit())
	l.SetLimit(-5)
	assert.Equal(t, 3, l.Limit())
	assert.Zero(t, l.InUse())
}

func TestLimit_LimiterWithoutSlotsIsInvalidAtStageBuild(t *testing.T) {
	for _, n := range []int{0, -1} {
		t.Run(fmt.Sprintf("NewLimiter(%d)", n), func(t *testing.T) {
			var calls atomic.Int64
			fn := func(ctx context.Context, v int) (int, error) { calls.Add(1); return v, nil }
			p := pipeline.New(context.Background())
			out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2, fn, pipeline.Limit(pipeline.NewLimiter(n)), pipeline.Name("limited"))
			got, err := pipeline.Collect(p, out)
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			assert.Contains(t, err.Error(), "limited")
			assert.Empty(t, got)
			assert.Zero(t, calls.Load(), "no call ran")

			p = pipeline.New(context.Background())
			err = pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3), 2, func(context.Context, int) error { return nil },
				pipeline.Limit(pipeline.NewLimiter(n)))
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			assert.Contains(t, err.Error(), "foreach#2")
		})
	}
}

// flowItem is an item with a weight, for Weighted.
type flowItem struct{ id, weight int }

func TestWeighted_CallsHoldTheirWeightInSlots(t *testing.T) {
	const limit = 10
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	l := pipeline.NewLimiter(limit)
	items := make([]flowItem, 300)
	for i := range items {
		items[i] = flowItem{id: i, weight: 1 + (i*7)%6} // 1..6
	}
	var held gauge
	var calls gauge
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, items...), 8, pipeline.Weighted(l,
		func(it flowItem) int { return it.weight },
		func(_ context.Context, it flowItem) (int, error) {
			calls.enter()
			held.add(int64(it.weight))
			time.Sleep(50 * time.Microsecond)
			held.add(-int64(it.weight))
			calls.leave()
			return it.id, nil
		}))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, len(items))
	assert.LessOrEqual(t, held.peak.Load(), int64(limit), "weights in flight exceeded the limit")
	assert.Greater(t, calls.peak.Load(), int64(1), "calls did run together")
	assert.Zero(t, l.InUse())
}

func TestWeighted_HeavyItemsShareTheLimitExactly(t *testing.T) {
	// Weight 4 under a limit of 10: two calls fit (8 slots), a third never.
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	l := pipeline.NewLimiter(10)
	var g gauge
	reached := make(chan struct{})
	var once sync.Once
	inner := reach(&g, 2, reached, &once)
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, flowInts(50)...), 6, pipeline.Weighted(l,
		func(int) int { return 4 },
		func(ctx context.Context, v int) (int, error) {
			assert.LessOrEqual(t, l.InUse(), 10)
			return inner(ctx, v)
		}))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, 50)
	assert.Equal(t, int64(2), g.peak.Load())
}

func TestWeighted_WeightBelowOneCountsAsOne(t *testing.T) {
	l := pipeline.NewLimiter(1)
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 0, -3, 5), 2, pipeline.Weighted(l,
		func(v int) int { return v },
		func(_ context.Context, v int) (int, error) {
			assert.Equal(t, 1, l.InUse(), "item %d holds one slot", v)
			return v, nil
		}), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.ElementsMatch(t, []int{0, -3}, got, "weight 5 exceeds the limit of 1")
	assert.Equal(t, uint64(1), stageStats(t, p, "fanout#2").Errors)
}

func TestWeighted_WeightAboveTheLimitFails(t *testing.T) {
	l := pipeline.NewLimiter(3)
	var calls atomic.Int64
	fn := pipeline.Weighted(l, func(v int) int { return v }, func(_ context.Context, v int) (int, error) {
		calls.Add(1)
		return v, nil
	})

	t.Run("fails the pipeline", func(t *testing.T) {
		p := pipeline.New(context.Background())
		_, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 4), 1, fn))
		require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		var se *pipeline.StageError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 4, se.Item)
	})
	t.Run("OnError skips it", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var skipped []any
		got, err := pipeline.Collect(p, pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 4, 3, 9, 2), 1, fn,
			pipeline.OnError(func(se *pipeline.StageError) error {
				assert.ErrorIs(t, se, pipeline.ErrInvalidArgument)
				skipped = append(skipped, se.Item)
				return nil
			})))
		require.NoError(t, err)
		assert.Equal(t, []int{1, 3, 2}, got)
		assert.Equal(t, []any{4, 9}, skipped)
	})
	assert.Equal(t, int64(3), calls.Load(), "only items that fit ran")
}

func TestWeighted_NilArgumentsFailEveryCall(t *testing.T) {
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	weight := func(int) int { return 1 }
	cases := map[string]func(context.Context, int) (int, error){
		"nil limiter":         pipeline.Weighted(nil, weight, id),
		"nil weight":          pipeline.Weighted(pipeline.NewLimiter(2), nil, id),
		"nil fn":              pipeline.Weighted[int, int](pipeline.NewLimiter(2), weight, nil),
		"limiter of size 0":   pipeline.Weighted(pipeline.NewLimiter(0), weight, id),
		"limiter of size < 0": pipeline.Weighted(pipeline.NewLimiter(-2), weight, id),
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			_, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 1), 1, fn))
			assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		})
	}
}

func TestWeighted_CancelWhileWaitingForSlotsEndsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := pipeline.NewLimiter(2)
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 3, pipeline.Weighted(l,
		func(int) int { return 2 },
		func(ctx context.Context, v int) (int, error) {
			<-ctx.Done() // holds both slots until cancelled
			return v, ctx.Err()
		}))
	require.Eventually(t, func() bool { return l.InUse() == 2 && stageStats(t, p, "fanout#2").Busy == 3 },
		hangBound, time.Millisecond)
	cancel()
	require.ErrorIs(t, waitErr(t, p), context.Canceled)
	for range out {
	}
	assert.Zero(t, l.InUse(), "no slot is left held after cancel")
}

func TestTimeout_GivesEveryCallADeadline(t *testing.T) {
	const d = time.Minute
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, flowInts(20)...), 4, func(ctx context.Context, v int) (time.Duration, error) {
		deadline, ok := ctx.Deadline()
		if !ok {
			return 0, errors.New("no deadline")
		}
		return time.Until(deadline), nil
	}, pipeline.Timeout(d))
	left, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	require.Len(t, left, 20)
	for _, l := range left {
		assert.LessOrEqual(t, l, d)
		assert.Greater(t, l, d-10*time.Second)
	}
}

func TestTimeout_HungCallFailsWithDeadlineExceeded(t *testing.T) {
	cases := map[string]func(ctx context.Context) error{
		"returns ctx.Err()":          func(ctx context.Context) error { return ctx.Err() },
		"returns context.Cause(ctx)": func(ctx context.Context) error { return context.Cause(ctx) },
		"returns its own error":      func(context.Context) error { return errors.New("gave up") },
	}
	for name, ret := range cases {
		t.Run(name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			out := pipeline.FanOut(p, pipeline.Generate(p, 7), 1, func(ctx context.Context, v int) (int, error) {
				<-ctx.Done()
				return 0, ret(ctx)
			}, pipeline.Timeout(20*time.Millisecond), pipeline.Name("hung"))
			start := time.Now()
			_, err := pipeline.Collect(p, out)
			assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond*9/10)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var se *pipeline.StageError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "hung", se.Stage)
			assert.Equal(t, 7, se.Item)
		})
	}
}

func TestTimeout_OnErrorSkipsTheTimedOutItemAndGoesOn(t *testing.T) {
	p := pipeline.New(context.Background())
	var skipped []*pipeline.StageError
	out := pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 2, func(ctx context.Context, v int) (int, error) {
		if v == 3 {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return v * 10, nil
	}, pipeline.Timeout(20*time.Millisecond), pipeline.OnError(func(se *pipeline.StageError) error {
		skipped = append(skipped, se)
		return nil
	}))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, []int{10, 20, 40, 50}, got)
	require.Len(t, skipped, 1)
	assert.Equal(t, 3, skipped[0].Item)
	assert.ErrorIs(t, skipped[0], context.DeadlineExceeded)
	assert.Equal(t, uint64(1), stageStats(t, p, "fanoutordered#2").Errors)
}

func TestTimeout_EachRetryAttemptHasItsOwnDeadline(t *testing.T) {
	const d = 30 * time.Millisecond
	var attempts atomic.Int64
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(ctx context.Context, v int) (int, error) {
		if attempts.Add(1) < 3 {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("third attempt started with a dead context: %w", err)
		}
		deadline, ok := ctx.Deadline()
		if !ok || time.Until(deadline) > d {
			return 0, errors.New("third attempt has no fresh deadline")
		}
		return v, nil
	}, pipeline.Timeout(d), pipeline.Retry(3, func(int) time.Duration { return 0 }))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, got)
	assert.Equal(t, int64(3), attempts.Load())
	assert.Equal(t, uint64(2), stageStats(t, p, "fanout#2").Retries)
}

func TestRetry_WaitsBackoffOfEachAttemptAndFailsWithTheLastError(t *testing.T) {
	var mu sync.Mutex
	var waits []int
	var calls atomic.Int64
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(ctx context.Context, v int) (int, error) {
		return 0, fmt.Errorf("attempt %d failed", calls.Add(1))
	}, pipeline.Retry(4, func(attempt int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, attempt)
		return time.Millisecond
	}), pipeline.Name("flaky"))
	_, err := pipeline.Collect(p, out)
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "flaky", se.Stage)
	assert.EqualError(t, se.Err, "attempt 4 failed")
	assert.Equal(t, int64(4), calls.Load())
	assert.Equal(t, []int{1, 2, 3}, waits, "backoff(n) before attempt n+1")
	assert.Equal(t, uint64(3), stageStats(t, p, "flaky").Retries)
}

func TestRetry_DeliversAnItemThatSucceedsOnALaterAttempt(t *testing.T) {
	var mu sync.Mutex
	failures := map[int]int{}
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, flowInts(20)...), 4, func(ctx context.Context, v int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if failures[v] < v%3 { // item v fails v%3 times, then works
			failures[v]++
			return 0, errors.New("not yet")
		}
		return v, nil
	}, pipeline.Retry(3, func(int) time.Duration { return 0 }))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	sort.Ints(got)
	assert.Equal(t, flowInts(20), got)
	var want uint64
	for _, v := range flowInts(20) {
		want += uint64(v % 3)
	}
	st := stageStats(t, p, "fanout#2")
	assert.Equal(t, want, st.Retries)
	assert.Zero(t, st.Errors)
}

func TestRetry_LastErrorGoesToOnError(t *testing.T) {
	p := pipeline.New(context.Background())
	var calls atomic.Int64
	var skipped []*pipeline.StageError
	out := pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3), 1, func(ctx context.Context, v int) (int, error) {
		if v == 2 {
			return 0, fmt.Errorf("bad item, call %d", calls.Add(1))
		}
		return v, nil
	}, pipeline.Retry(2, func(int) time.Duration { return 0 }), pipeline.OnError(func(se *pipeline.StageError) error {
		skipped = append(skipped, se)
		return nil
	}))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 3}, got)
	require.Len(t, skipped, 1)
	assert.Equal(t, 2, skipped[0].Item)
	assert.EqualError(t, skipped[0].Err, "bad item, call 2")
	st := stageStats(t, p, "fanoutordered#2")
	assert.Equal(t, uint64(1), st.Retries)
	assert.Equal(t, uint64(1), st.Errors)
}

func TestRetry_OneAttemptMeansNoRetry(t *testing.T) {
	var calls atomic.Int64
	p := pipeline.New(context.Background())
	err := pipeline.ForEach(p, pipeline.Generate(p, 1), 1, func(context.Context, int) error {
		calls.Add(1)
		return errors.New("no")
	}, pipeline.Retry(1, func(int) time.Duration { panic("no backoff for one attempt") }))
	require.Error(t, err)
	assert.NotErrorAs(t, err, new(*pipeline.PanicError))
	assert.Equal(t, int64(1), calls.Load())
	assert.Zero(t, stageStats(t, p, "foreach#2").Retries)
}

func TestRetry_DoesNotRetryPanics(t *testing.T) {
	var calls atomic.Int64
	p := pipeline.New(context.Background())
	_, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) {
		calls.Add(1)
		panic("boom")
	}, pipeline.Retry(5, func(int) time.Duration { return 0 })))
	var pe *pipeline.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "boom", pe.Value)
	assert.Equal(t, int64(1), calls.Load())
	assert.Zero(t, stageStats(t, p, "fanout#2").Retries)
}

func TestRetry_CancelAbortsTheBackoffWaitPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	failed := make(chan struct{})
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) {
		if calls.Add(1) == 1 {
			close(failed)
		}
		return 0, errors.New("fails")
	}, pipeline.Retry(3, func(int) time.Duration { return time.Hour }))
	<-failed
	require.Eventually(t, func() bool { return stageStats(t, p, "fanout#2").Retries == 1 }, hangBound, time.Millisecond)

	start := time.Now()
	cancel()
	err := waitErr(t, p)
	assert.Less(t, time.Since(start), hangBound)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int64(1), calls.Load(), "no attempt after cancel")
	for range out {
	}
}

func TestRetry_NilBackoffWaitsDefaultBackoff(t *testing.T) {
	// With a nil backoff each retry waits DefaultBackoff(1), a random wait in
	// [0, 50ms): ten of them add up to well above zero, and none is long.
	const items = 10
	var mu sync.Mutex
	last := map[int]time.Time{}
	var gaps []time.Duration
	p := pipeline.New(context.Background())
	err := pipeline.ForEach(p, pipeline.Generate(p, flowInts(items)...), 1, func(_ context.Context, v int) error {
		mu.Lock()
		defer mu.Unlock()
		if at, ok := last[v]; ok {
			gaps = append(gaps, time.Since(at))
			return nil
		}
		last[v] = time.Now()
		return errors.New("first attempt fails")
	}, pipeline.Retry(2, nil))
	require.NoError(t, err)
	require.Len(t, gaps, items)
	var total time.Duration
	for _, g := range gaps {
		total += g
		assert.Less(t, g, 50*time.Millisecond+time.Second, "a first retry waits under 50ms (plus scheduling)")
	}
	// The mean wait is 25ms; ten waits below 60ms in all has a probability
	// of about 2e-6.
	assert.Greater(t, total, 60*time.Millisecond, "nil backoff did not wait: %v", gaps)
	assert.Equal(t, uint64(items), stageStats(t, p, "foreach#2").Retries)
}

func TestDefaultBackoff_IsARandomWaitBelowTheExponentialCap(t *testing.T) {
	capOf := func(n int) time.Duration {
		c := 5 * time.Second
		if n < 1 {
			n = 1
		}
		if n <= 20 {
			c = min(c, 50*time.Millisecond<<(n-1))
		}
		return c
	}
	for _, n := range []int{-1, 0, 1, 2, 3, 5, 7, 8, 10, 30, 64, 1000} {
		t.Run(fmt.Sprintf("attempt=%d", n), func(t *testing.T) {
			limit := capOf(n)
			var hi time.Duration
			seen := map[time.Duration]bool{}
			for range 2000 {
				d := pipeline.DefaultBackoff(n)
				require.GreaterOrEqual(t, d, time.Duration(0))
				require.Less(t, d, limit)
				hi = max(hi, d)
				seen[d] = true
			}
			// 2000 uniform draws all in the lower half: probability 2^-2000.
			assert.GreaterOrEqual(t, hi, limit/2, "the waits do not spread up to the cap")
			assert.Greater(t, len(seen), 100, "the waits are not jittered")
		})
	}
	assert.Equal(t, 50*time.Millisecond, capOf(1))
	assert.Equal(t, 3200*time.Millisecond, capOf(7))
	assert.Equal(t, 5*time.Second, capOf(8))
}
