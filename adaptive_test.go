package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// errAdaptBusy is what adaptDown answers beyond twice its capacity.
var errAdaptBusy = errors.New("downstream busy")

// adaptDown is a simulated downstream: a call started with n calls in
// flight (its own included) takes base while n <= capacity and base×n/capacity
// beyond it, and fails after base when n > 2×capacity.
type adaptDown struct {
	base     atomic.Int64 // a time.Duration
	capacity atomic.Int64
	g        gauge
}

func newAdaptDown(base time.Duration, capacity int) *adaptDown {
	d := &adaptDown{}
	d.base.Store(int64(base))
	d.capacity.Store(int64(capacity))
	return d
}

func (d *adaptDown) call(ctx context.Context, v int) (int, error) {
	n := d.g.enter()
	defer d.g.leave()
	c, base := d.capacity.Load(), d.base.Load()
	latency, err := time.Duration(base), error(nil)
	switch {
	case n > 2*c:
		err = errAdaptBusy
	case n > c:
		latency = time.Duration(base * n / c)
	}
	select {
	case <-time.After(latency):
		return v, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// adaptRun runs a stage of workers workers calling fn under Limit(l), fed
// without end, for d, then stops it; failed calls are skipped. It returns
// l's limit sampled every 10 ms, and every stage's stats at the end.
func adaptRun(t *testing.T, l *pipeline.Limiter, workers int, d time.Duration, fn func(context.Context, int) (int, error)) ([]int, []pipeline.StageStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+hangBound)
	defer cancel()
	p := pipeline.New(ctx)
	src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
	})
	out := pipeline.FanOut(p, src, workers, fn, pipeline.Limit(l), pipeline.Name("call"),
		pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	done := make(chan error, 1)
	go func() { done <- pipeline.Drain(p, out) }()
	var limits []int
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		limits = append(limits, l.Limit())
	}
	p.Stop()
	require.NoError(t, <-done)
	return limits, p.Stats()
}

// settled is the median of the last third of a run's limits.
func settled(limits []int) int {
	tail := slices.Clone(limits[len(limits)*2/3:])
	slices.Sort(tail)
	return tail[len(tail)/2]
}

// adaptAlgorithms are the rules under test, set for a downstream of base
// latency base.
func adaptAlgorithms(base time.Duration) map[string]pipeline.Algorithm {
	return map[string]pipeline.Algorithm{
		"AIMD":  pipeline.AIMD{Threshold: base * 3 / 2},
		"Vegas": pipeline.Vegas{},
	}
}

func TestAdaptiveLimiter_ConvergesNearTheDownstreamsCapacity(t *testing.T) {
	const base, c = 10 * time.Millisecond, 8
	for name, alg := range adaptAlgorithms(base) {
		t.Run(name, func(t *testing.T) {
			d := newAdaptDown(base, c)
			l := pipeline.NewAdaptiveLimiter(1, 48, alg)
			limits, _ := adaptRun(t, l, 48, 2*time.Second, d.call)
			got := settled(limits)
			assert.GreaterOrEqual(t, got, c/2, "limits: %v", limits)
			assert.LessOrEqual(t, got, 5*c/2, "limits: %v", limits)
			assert.LessOrEqual(t, d.g.peak.Load(), int64(48))
		})
	}
}

func TestAdaptiveLimiter_FollowsTheCapacityDownAndUp(t *testing.T) {
	const base, phase = 10 * time.Millisecond, 1500 * time.Millisecond
	caps := []int{24, 4, 24}
	for name, alg := range adaptAlgorithms(base) {
		t.Run(name, func(t *testing.T) {
			d := newAdaptDown(base, caps[0])
			l := pipeline.NewAdaptiveLimiter(1, 64, alg)
			l.SetLimit(caps[0])
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for _, c := range caps[1:] {
					select {
					case <-time.After(phase):
						d.capacity.Store(int64(c))
					case <-stop:
						return
					}
				}
			}()
			limits, _ := adaptRun(t, l, 64, 3*phase, d.call)
			per := len(limits) / len(caps)
			for i, c := range caps {
				got := settled(limits[i*per : (i+1)*per])
				assert.GreaterOrEqual(t, got, c/2, "phase %d, capacity %d; limits: %v", i+1, c, limits)
				assert.LessOrEqual(t, got, 5*c/2, "phase %d, capacity %d; limits: %v", i+1, c, limits)
			}
		})
	}
}

func TestAdaptiveLimiter_BacksOffOnErrors(t *testing.T) {
	// Calls fail whenever more than 3 are in flight; nothing is slow.
	for name, alg := range map[string]pipeline.Algorithm{"AIMD": pipeline.AIMD{}, "Vegas": pipeline.Vegas{}} {
		t.Run(name, func(t *testing.T) {
			var g gauge
			l := pipeline.NewAdaptiveLimiter(1, 32, alg)
			l.SetLimit(32)
			limits, _ := adaptRun(t, l, 32, 1500*time.Millisecond, func(ctx context.Context, v int) (int, error) {
				defer g.leave()
				if g.enter() > 3 {
					return 0, errAdaptBusy
				}
				time.Sleep(time.Millisecond)
				return v, nil
			})
			assert.LessOrEqual(t, settled(limits), 8, "limits: %v", limits)
			var reasons []string
			for _, a := range l.Adjustments() {
				reasons = append(reasons, a.Reason)
			}
			assert.Contains(t, reasons, "failure")
		})
	}
}

func TestAdaptiveLimiter_CountsOnlyTheErrorsItsFailureFunctionAccepts(t *testing.T) {
	// Every call fails, in 5 ms however many run, with an error that is not
	// overload: the limit grows to max as if they all succeeded.
	errNotFound := errors.New("not found")
	notOverload := func(err error) bool { return !errors.Is(err, errNotFound) }
	for name, alg := range map[string]pipeline.Algorithm{
		"AIMD":  pipeline.AIMD{Failure: notOverload},
		"Vegas": pipeline.Vegas{Failure: notOverload, Alpha: 0.5, Beta: 0.9}, // wide: the machine's noise is no queue
	} {
		t.Run(name, func(t *testing.T) {
			l := pipeline.NewAdaptiveLimiter(1, 6, alg)
			limits, _ := adaptRun(t, l, 6, time.Second, func(ctx context.Context, v int) (int, error) {
				time.Sleep(5 * time.Millisecond)
				return 0, errNotFound
			})
			assert.Equal(t, 6, slices.Max(limits), "limits: %v", limits)
			for _, a := range l.Adjustments() {
				assert.NotEqual(t, "failure", a.Reason)
			}
		})
	}
}

func TestAdaptiveLimiter_TimeoutsAreFailures(t *testing.T) {
	l := pipeline.NewAdaptiveLimiter(2, 8, pipeline.AIMD{})
	l.SetLimit(8)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(100 + 1)[1:]...), 8, func(ctx context.Context, v int) (int, error) {
		<-ctx.Done() // until the deadline of Timeout
		return 0, ctx.Err()
	}, pipeline.Limit(l), pipeline.Timeout(2*time.Millisecond), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, 2, l.Limit(), "%v", l.Adjustments())
}

func TestAdaptiveLimiter_AIMDCutsCallsSlowerThanItsThreshold(t *testing.T) {
	l := pipeline.NewAdaptiveLimiter(1, 8, pipeline.AIMD{Threshold: time.Millisecond})
	l.SetLimit(8)
	_, _ = adaptRun(t, l, 8, 500*time.Millisecond, func(ctx context.Context, v int) (int, error) {
		time.Sleep(5 * time.Millisecond)
		return v, nil
	})
	assert.Equal(t, 1, l.Limit())
	adj := l.Adjustments()
	require.NotEmpty(t, adj)
	last := adj[len(adj)-1]
	assert.Equal(t, "latency", last.Reason)
	assert.GreaterOrEqual(t, last.Latency, 5*time.Millisecond)
}

// aimdSteps runs calls calls one at a time (each a round of its own) under
// an AIMD limiter of limits [1, from] set to from, call i returning what
// fn(i) does, and returns the limits it moved to after that SetLimit.
func aimdSteps(t *testing.T, alg pipeline.AIMD, from, calls int, fn func(i int) error) []int {
	t.Helper()
	l := pipeline.NewAdaptiveLimiter(1, from, alg)
	l.SetLimit(from)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	p := pipeline.New(ctx)
	err := pipeline.ForEach(p, pipeline.Generate(p, ints(calls)...), 1, func(_ context.Context, i int) error {
		return fn(i)
	}, pipeline.Limit(l), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	require.NoError(t, err)
	var to []int
	for _, a := range l.Adjustments()[1:] {
		to = append(to, a.To)
	}
	return to
}

func TestAdaptiveLimiter_AIMDBadRoundsInARowCompoundTheBackoff(t *testing.T) {
	fail := errors.New("overloaded")
	slow := func(ms int) func(int) error {
		return func(int) error {
			time.Sleep(time.Duration(ms) * time.Millisecond)
			return nil
		}
	}
	for name, bad := range map[string]struct {
		alg  pipeline.AIMD
		call func(int) error
	}{
		"failures":   {pipeline.AIMD{}, func(int) error { return fail }},
		"slow calls": {pipeline.AIMD{Threshold: 50 * time.Millisecond}, slow(60)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Run("squared each time, down to half", func(t *testing.T) {
				// 20 × 0.9 = 18, × 0.81 = 14.6, × 0.66 = 9.6, then halved: 4.8, 2.4, 1.2.
				to := aimdSteps(t, bad.alg, 20, 6, bad.call)
				assert.Equal(t, []int{18, 14, 9, 4, 2, 1}, to)
			})
			t.Run("a good call starts again from Backoff", func(t *testing.T) {
				// 9.6 after three bad calls; a good one; then 9.6 × 0.9 = 8.6, × 0.81 = 7.0.
				to := aimdSteps(t, bad.alg, 20, 6, func(i int) error {
					if i == 3 {
						return nil
					}
					return bad.call(i)
				})
				assert.Equal(t, []int{18, 14, 9, 8, 6}, to)
			})
			t.Run("never by more than Backoff asks", func(t *testing.T) {
				alg := bad.alg
				alg.Backoff = 0.4
				to := aimdSteps(t, alg, 20, 3, bad.call)
				assert.Equal(t, []int{8, 3, 1}, to)
			})
		})
	}
}

func TestAdaptiveLimiter_NeverLeavesItsBounds(t *testing.T) {
	t.Run("failing calls bring it to min, not below", func(t *testing.T) {
		for name, alg := range map[string]pipeline.Algorithm{"AIMD": pipeline.AIMD{}, "Vegas": pipeline.Vegas{}} {
			t.Run(name, func(t *testing.T) {
				l := pipeline.NewAdaptiveLimiter(3, 10, alg)
				l.SetLimit(10)
				limits, _ := adaptRun(t, l, 10, 500*time.Millisecond, func(ctx context.Context, v int) (int, error) {
					time.Sleep(100 * time.Microsecond)
					return 0, errAdaptBusy
				})
				assert.Equal(t, 3, l.Limit())
				assert.GreaterOrEqual(t, slices.Min(limits), 3)
				for _, a := range l.Adjustments() {
					assert.GreaterOrEqual(t, a.To, 3, "%+v", a)
					assert.LessOrEqual(t, a.To, 10, "%+v", a)
				}
			})
		}
	})
	t.Run("good calls bring it to max, not above", func(t *testing.T) {
		// A downstream of no capacity limit: calls take 5 ms however many
		// run (give or take the machine's noise, which Vegas's wide band
		// here tolerates).
		for name, alg := range map[string]pipeline.Algorithm{
			"AIMD":  pipeline.AIMD{},
			"Vegas": pipeline.Vegas{Alpha: 0.5, Beta: 0.9},
		} {
			t.Run(name, func(t *testing.T) {
				var g gauge
				l := pipeline.NewAdaptiveLimiter(2, 12, alg)
				limits, _ := adaptRun(t, l, 40, time.Second, func(ctx context.Context, v int) (int, error) {
					defer g.leave()
					g.enter()
					time.Sleep(5 * time.Millisecond)
					return v, nil
				})
				assert.Equal(t, 12, slices.Max(limits), "limits: %v", limits)
				assert.LessOrEqual(t, g.peak.Load(), int64(12), "calls at once, with 40 workers")
				for _, a := range l.Adjustments() {
					assert.GreaterOrEqual(t, a.To, 2, "%+v", a)
					assert.LessOrEqual(t, a.To, 12, "%+v", a)
				}
			})
		}
	})
	t.Run("SetLimit is clamped", func(t *testing.T) {
		l := pipeline.NewAdaptiveLimiter(2, 12, pipeline.Vegas{})
		assert.Equal(t, 2, l.Limit(), "it starts at min")
		l.SetLimit(100)
		assert.Equal(t, 12, l.Limit())
		l.SetLimit(1)
		assert.Equal(t, 2, l.Limit())
		l.SetLimit(0) // ignored, as on every limiter
		assert.Equal(t, 2, l.Limit())
		adj := l.Adjustments()
		require.Len(t, adj, 2)
		assert.Equal(t, pipeline.Adjustment{Time: adj[0].Time, From: 2, To: 12, Reason: "set"}, adj[0])
		assert.Equal(t, pipeline.Adjustment{Time: adj[1].Time, From: 12, To: 2, Reason: "set"}, adj[1])
	})
}

func TestAdaptiveLimiter_StageWithMaxWorkersRunsAtMostTheCurrentLimit(t *testing.T) {
	// The limit is first driven down to 2 by failures; then, with calls
	// that block, exactly 2 run and the 14 other workers wait, parked.
	l := pipeline.NewAdaptiveLimiter(2, 16, pipeline.AIMD{})
	l.SetLimit(16)
	var failing atomic.Bool
	failing.Store(true)
	release := make(chan struct{})
	var g gauge
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	p := pipeline.New(ctx)
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(1000 + 1)[1:]...), 16, func(ctx context.Context, v int) (int, error) {
		if failing.Load() {
			if l.Limit() == 2 {
				failing.Store(false)
			}
			return 0, errAdaptBusy
		}
		defer g.leave()
		g.enter()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return v, nil
	}, pipeline.Limit(l), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Collect(p, out)
		done <- err
	}()
	require.Eventually(t, func() bool { return l.InFlight() == 2 && l.Waiting() == 14 }, hangBound, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // room for a third call, were one let through
	assert.Equal(t, int64(2), g.cur.Load())
	assert.Equal(t, 2, l.Limit())
	assert.Equal(t, 2, l.InUse())
	close(release)
	require.NoError(t, <-done)
	assert.Zero(t, l.InUse())
	assert.Zero(t, l.InFlight())
	assert.Zero(t, l.Waiting())
}

func TestAdaptiveLimiter_SharedByTwoStages(t *testing.T) {
	const base, c = 10 * time.Millisecond, 8
	for name, alg := range adaptAlgorithms(base) {
		t.Run(name, func(t *testing.T) {
			d := newAdaptDown(base, c)
			l := pipeline.NewAdaptiveLimiter(1, 32, alg)
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			defer cancel()
			p := pipeline.New(ctx)
			skip := pipeline.OnError(func(*pipeline.StageError) error { return nil })
			src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
				for i := 0; ; i++ {
					if err := emit(i); err != nil {
						return err
					}
				}
			})
			a := pipeline.FanOut(p, src, 32, d.call, pipeline.Limit(l), pipeline.Name("a"), skip)
			b := pipeline.FanOut(p, a, 32, d.call, pipeline.Limit(l), pipeline.Name("b"), skip)
			done := make(chan error, 1)
			go func() { done <- pipeline.Drain(p, b) }()
			var limits []int
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				limits = append(limits, l.Limit())
				assert.LessOrEqual(t, l.InUse(), 32)
			}
			stats := p.Stats()
			p.Stop()
			require.NoError(t, <-done)
			got := settled(limits)
			assert.GreaterOrEqual(t, got, c/2, "limits: %v", limits)
			assert.LessOrEqual(t, got, 5*c/2, "limits: %v", limits)
			assert.LessOrEqual(t, d.g.peak.Load(), int64(32), "calls of both stages at once")
			byName := map[string]pipeline.StageStats{}
			for _, s := range stats {
				byName[s.Name] = s
			}
			assert.Positive(t, byName["a"].Out)
			assert.Positive(t, byName["b"].Out)
			assert.Positive(t, byName["a"].Limit)
			assert.LessOrEqual(t, byName["a"].Limit, 32)
			assert.Zero(t, l.InUse())
		})
	}
}

func TestAdaptiveLimiter_SharedByTwoPipelines(t *testing.T) {
	// Two pipelines, 16 workers each, one downstream that fails whenever
	// more than 4 calls are in flight: the shared limiter backs off for
	// both, and never lets more than its max through.
	var g gauge
	call := func(ctx context.Context, v int) (int, error) {
		defer g.leave()
		if g.enter() > 4 {
			return 0, errAdaptBusy
		}
		time.Sleep(2 * time.Millisecond)
		return v, nil
	}
	l := pipeline.NewAdaptiveLimiter(1, 16, pipeline.AIMD{})
	l.SetLimit(16)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	var wg sync.WaitGroup
	var failed [2]atomic.Int64
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := pipeline.New(ctx)
			out := pipeline.FanOut(p, pipeline.Generate(p, ints(600 + 1)[1:]...), 16, call, pipeline.Limit(l),
				pipeline.OnError(func(*pipeline.StageError) error { failed[i].Add(1); return nil }))
			assert.NoError(t, pipeline.Drain(p, out))
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, g.peak.Load(), int64(16))
	assert.LessOrEqual(t, l.Limit(), 8, "%v", l.Adjustments())
	assert.Positive(t, failed[0].Load()+failed[1].Load())
	assert.Zero(t, l.InUse())
}

func TestAdaptiveLimiter_Stop(t *testing.T) {
	// Calls wait for the limiter (16 workers, at most 4 slots) when Stop
	// comes: every item the source emitted is still delivered.
	for name, alg := range adaptAlgorithms(2 * time.Millisecond) {
		t.Run(name, func(t *testing.T) {
			l := pipeline.NewAdaptiveLimiter(1, 4, alg)
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			defer cancel()
			p := pipeline.New(ctx)
			var emitted atomic.Int64
			src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
				for i := 0; ; i++ {
					if err := emit(i); err != nil {
						return err
					}
					emitted.Add(1)
				}
			})
			out := pipeline.FanOut(p, src, 16, func(ctx context.Context, v int) (int, error) {
				time.Sleep(2 * time.Millisecond)
				return v, nil
			}, pipeline.Limit(l))
			done := make(chan []int, 1)
			go func() {
				got, err := pipeline.Collect(p, out)
				assert.NoError(t, err)
				done <- got
			}()
			require.Eventually(t, func() bool { return l.Waiting() > 0 }, hangBound, time.Millisecond)
			p.Stop()
			got := <-done
			assert.Len(t, got, int(emitted.Load()), "every emitted item is delivered")
			assert.Zero(t, l.InUse())
			assert.Zero(t, l.Waiting())
		})
	}
}

func TestAdaptiveLimiter_CancelWhileCallsWait(t *testing.T) {
	for name, alg := range adaptAlgorithms(2 * time.Millisecond) {
		t.Run(name, func(t *testing.T) {
			l := pipeline.NewAdaptiveLimiter(2, 8, alg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := pipeline.New(ctx)
			out := pipeline.FanOut(p, pipeline.Generate(p, ints(100 + 1)[1:]...), 8, func(ctx context.Context, v int) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			}, pipeline.Limit(l))
			done := make(chan error, 1)
			go func() {
				_, err := pipeline.Collect(p, out)
				done <- err
			}()
			require.Eventually(t, func() bool { return l.InFlight() == 2 && l.Waiting() == 6 }, hangBound, time.Millisecond)
			cancel()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(hangBound):
				t.Fatal("cancel did not end the waiting calls")
			}
			assert.Zero(t, l.InUse())
			assert.Zero(t, l.InFlight())
			assert.Zero(t, l.Waiting())
			assert.Empty(t, l.Adjustments(), "calls ended by the cancellation teach nothing")
			assert.Equal(t, 2, l.Limit())
		})
	}
}

func TestAdaptiveLimiter_Weighted(t *testing.T) {
	t.Run("an item heavier than the limit runs alone", func(t *testing.T) {
		l := pipeline.NewAdaptiveLimiter(1, 8, pipeline.AIMD{})
		var g gauge
		fn := pipeline.Weighted(l, func(w int) int { return w }, func(ctx context.Context, w int) (int, error) {
			defer g.add(-int64(w))
			g.add(int64(w))
			time.Sleep(time.Millisecond)
			return w, nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		p := pipeline.New(ctx)
		got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 5, 1, 8, 1, 1, 6), 4, fn))
		require.NoError(t, err)
		assert.ElementsMatch(t, []int{5, 1, 8, 1, 1, 6}, got)
		assert.LessOrEqual(t, g.peak.Load(), int64(8))
		assert.Zero(t, l.InUse())
	})
	t.Run("an item heavier than max fails", func(t *testing.T) {
		l := pipeline.NewAdaptiveLimiter(1, 8, pipeline.AIMD{})
		fn := pipeline.Weighted(l, func(w int) int { return w }, func(ctx context.Context, w int) (int, error) { return w, nil })
		_, err := fn(context.Background(), 9)
		require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "weight 9 exceeds the limit of 8 slots")
	})
	t.Run("weighted calls teach the limiter", func(t *testing.T) {
		l := pipeline.NewAdaptiveLimiter(1, 8, pipeline.AIMD{})
		l.SetLimit(8)
		fn := pipeline.Weighted(l, func(int) int { return 2 }, func(ctx context.Context, v int) (int, error) { return 0, errAdaptBusy })
		for range 40 {
			_, err := fn(context.Background(), 1)
			require.ErrorIs(t, err, errAdaptBusy)
		}
		assert.Equal(t, 1, l.Limit())
	})
}

func TestAdaptiveLimiter_FlatMapLatencyLeavesOutWaitingForRoomDownstream(t *testing.T) {
	// Each call returns at once but emits 5 items into an unbuffered output
	// read every 5 ms: were the wait counted, every call would exceed the
	// 10 ms threshold.
	l := pipeline.NewAdaptiveLimiter(1, 4, pipeline.AIMD{Threshold: 10 * time.Millisecond})
	l.SetLimit(4)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	p := pipeline.New(ctx)
	out := pipeline.FlatMap(p, pipeline.Generate(p, ints(20 + 1)[1:]...), 4, func(ctx context.Context, v int, emit func(int) error) error {
		for i := range 5 {
			if err := emit(v*10 + i); err != nil {
				return err
			}
		}
		return nil
	}, pipeline.Limit(l), pipeline.BufferSize(0))
	n := 0
	err := pipeline.ForEach(p, out, 1, func(ctx context.Context, v int) error {
		n++
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 100, n)
	for _, a := range l.Adjustments() {
		assert.NotEqual(t, "latency", a.Reason, "%+v", a)
	}
}

func TestAdaptiveLimiter_VegasRelearnsASlowerDownstream(t *testing.T) {
	// The downstream's no-load latency triples for good after a second:
	// read as a queue, it would hold the limit down; the probe re-measures
	// it, and the limit returns near the capacity.
	const c = 8
	d := newAdaptDown(4*time.Millisecond, c)
	l := pipeline.NewAdaptiveLimiter(1, 32, pipeline.Vegas{ProbeEvery: 20})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-time.After(time.Second):
			d.base.Store(int64(12 * time.Millisecond))
		case <-stop:
		}
	}()
	limits, _ := adaptRun(t, l, 32, 3*time.Second, d.call)
	got := settled(limits)
	assert.GreaterOrEqual(t, got, c/2, "limits: %v", limits)
	assert.LessOrEqual(t, got, 5*c/2, "limits: %v", limits)
}

func TestAdaptiveLimiter_InvalidSettingsFailEveryStage(t *testing.T) {
	for _, tc := range []struct {
		l    *pipeline.Limiter
		want string
	}{
		{pipeline.NewAdaptiveLimiter(0, 8, pipeline.AIMD{}), "min must be >= 1"},
		{pipeline.NewAdaptiveLimiter(5, 4, pipeline.AIMD{}), "max must be >= min"},
		{pipeline.NewAdaptiveLimiter(1, 8, nil), "nil algorithm"},
		{pipeline.NewAdaptiveLimiter(1, 8, pipeline.AIMD{Backoff: 1}), "Backoff must be in (0, 1)"},
		{pipeline.NewAdaptiveLimiter(1, 8, pipeline.AIMD{Threshold: -time.Second}), "Threshold must be >= 0"},
		{pipeline.NewAdaptiveLimiter(1, 8, pipeline.Vegas{Alpha: 0.5, Beta: 0.4}), "0 < Alpha < Beta < 1"},
		{pipeline.NewAdaptiveLimiter(1, 8, pipeline.Vegas{Backoff: -0.5}), "Backoff must be in (0, 1)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			tc.l.SetLimit(4) // cannot mend it
			assert.Zero(t, tc.l.Limit())
			p := pipeline.New(context.Background())
			out := pipeline.FanOut(p, pipeline.Generate(p, 1), 2, identity, pipeline.Limit(tc.l))
			_, err := pipeline.Collect(p, out)
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "NewAdaptiveLimiter")
			_, err = pipeline.Weighted(tc.l, func(int) int { return 1 }, identity)(context.Background(), 1)
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestStats_LimitIsTheCurrentLimitOfTheStagesLimiter(t *testing.T) {
	fixed := pipeline.NewLimiter(3)
	adaptive := pipeline.NewAdaptiveLimiter(2, 9, pipeline.Vegas{})
	adaptive.SetLimit(7)
	p := pipeline.New(context.Background())
	a := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2, identity, pipeline.Name("fixed"), pipeline.Limit(fixed))
	b := pipeline.FanOut(p, a, 2, identity, pipeline.Name("adaptive"), pipeline.Limit(adaptive))
	c := pipeline.FanOut(p, b, 2, identity, pipeline.Name("none"))
	_, err := pipeline.Collect(p, c)
	require.NoError(t, err)
	got := map[string]int{}
	for _, s := range p.Stats() {
		got[s.Name] = s.Limit
	}
	assert.Equal(t, 3, got["fixed"])
	assert.Equal(t, adaptive.Limit(), got["adaptive"])
	assert.Equal(t, 0, got["none"])
	assert.Equal(t, 0, got[fmt.Sprintf("generate#%d", 1)])
}

// TestAdaptiveLimiter_VegasDoesNotUndoADropFromAQueueItBuilt: at a small
// capacity, a Vegas limit one above it builds a queue a call at a time;
// the drop that follows leaves no queue at all, which must not read as a
// spurious drop to undo (the limit would swing between the right value and
// one too high, round after round).
func TestAdaptiveLimiter_VegasDoesNotUndoADropFromAQueueItBuilt(t *testing.T) {
	const base = 10 * time.Millisecond
	d := newAdaptDown(base, 2)
	l := pipeline.NewAdaptiveLimiter(1, 64, pipeline.Vegas{})
	adaptRun(t, l, 16, 1500*time.Millisecond, d.call)
	undos := 0
	for _, a := range l.Adjustments() {
		if a.Reason == "undo" {
			undos++
		}
	}
	// A pause of a loaded machine may still make a jump worth an undo, now
	// and then; the swing made one every other round (about ten here).
	assert.LessOrEqual(t, undos, 3, "adjustments: %v", l.Adjustments())
}
