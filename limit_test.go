package pipeline_test

// Tests of limit.go: Limiter, the Limit option and Weighted.

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestLimiter: a pool of slots shared by stages and pipelines, resizable.
func TestLimiter(t *testing.T) {
	// Regression: NewLimiter(math.MaxInt) admitted a call while another held every slot, and InUse went negative.
	t.Run("a limiter of math.MaxInt slots never overflows", func(t *testing.T) {
		l := pipeline.NewLimiter(math.MaxInt)
		p := pipeline.New(context.Background())
		release := make(chan struct{})
		holding := make(chan struct{})
		second := make(chan struct{})
		heavy := pipeline.Weighted(l, func(v int) int {
			if v == 0 {
				return math.MaxInt
			}
			return 1
		}, func(_ context.Context, v int) (int, error) {
			if v == 0 {
				close(holding)
				<-release
			} else {
				close(second)
			}
			return v, nil
		})
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			if err := emit(0); err != nil {
				return err
			}
			<-holding // item 1 comes once item 0 holds every slot
			return emit(1)
		})
		out := pipeline.FanOut(p, src, 2, heavy)
		await(t, holding, "the call holding every slot")
		select {
		case <-second:
			t.Fatal("a second call was admitted while every slot was held")
		case <-time.After(50 * time.Millisecond):
		}
		assert.Equal(t, math.MaxInt, l.InUse())
		close(release)
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Len(t, got, 2)
		assert.Zero(t, l.InUse())
	})

	t.Run("caps concurrency across stages sharing it", func(t *testing.T) {
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
				a := pipeline.FanOut(p, pipeline.Generate(p, ints(300)...), 8, fn, pipeline.Limit(l), pipeline.Name("a"))
				b := pipeline.FanOut(p, a, 8, fn, pipeline.Limit(l), pipeline.Name("b"))
				got, err := pipeline.Collect(p, b)
				require.NoError(t, err, "the shared limit was never reached")
				assert.Len(t, got, 300)
				assert.Equal(t, int64(n), g.peak.Load(), "peak concurrency across both stages")
				assert.Zero(t, l.InUse(), "every slot was given back")
			})
		}
	})

	t.Run("a stage runs at most its workers under a bigger limit", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(10)
		var g gauge
		reached := make(chan struct{})
		var once sync.Once
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(100)...), 3, reach(&g, 3, reached, &once), pipeline.Limit(l))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Len(t, got, 100)
		assert.Equal(t, int64(3), g.peak.Load())
	})

	t.Run("works across two pipelines", func(t *testing.T) {
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
				got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, ints(100)...), 4, fn, pipeline.Limit(l)))
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
	})

	t.Run("SetLimit growing starts waiting calls at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(2)
		var g gauge
		release := make(chan struct{})
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(20)...), 8, func(ctx context.Context, v int) (int, error) {
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
	})

	t.Run("SetLimit shrinking lets running calls finish and new ones obey", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(4)
		var all, late gauge
		var started atomic.Int64
		release := make(chan struct{})
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(30)...), 8, func(ctx context.Context, v int) (int, error) {
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
	})

	t.Run("SetLimit below one is ignored", func(t *testing.T) {
		l := pipeline.NewLimiter(3)
		l.SetLimit(0)
		assert.Equal(t, 3, l.Limit())
		l.SetLimit(-5)
		assert.Equal(t, 3, l.Limit())
		assert.Zero(t, l.InUse())
	})

	// Regression: a Weighted call waiting for more slots than SetLimit left blocked every later call (issue 3).
	// Limiter.SetLimit shrinking below the weight of a call already waiting in
	// Weighted: the waiter can never be served and, the queue being first come,
	// first served, would block every later call; it fails instead, as Weighted
	// documents for a weight above the limit.
	t.Run("SetLimit below a waiting weight fails the item", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(4)
		gate := make(chan struct{})
		p := pipeline.New(ctx)
		next := make(chan struct{})
		src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
			if err := emit(4); err != nil {
				return err
			}
			select { // item 3 only once item 4 holds every slot
			case <-next:
			case <-ctx.Done():
				return ctx.Err()
			}
			return emit(3)
		})
		out := pipeline.FanOut(p, src, 2, pipeline.Weighted(l,
			func(v int) int { return v },
			func(ctx context.Context, v int) (int, error) {
				if v == 4 {
					select {
					case <-gate:
					case <-ctx.Done():
					}
				}
				return v, nil
			}))
		require.Eventually(t, func() bool { return l.InUse() == 4 }, hangBound, time.Millisecond)
		close(next)
		require.Eventually(t, func() bool { return p.Stats()[1].Busy == 2 },
			hangBound, time.Millisecond)
		l.SetLimit(2)
		close(gate)
		_, err := pipeline.Collect(p, out)
		assert.ErrorIs(t, err, pipeline.ErrInvalidArgument, "item 3 can never fit in 2 slots")
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "the pipeline hung until its deadline")
	})
}

// TestLimit: the option that makes a stage's calls hold a Limiter slot.
func TestLimit(t *testing.T) {
	t.Run("a limiter without slots is invalid at stage build", func(t *testing.T) {
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
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Limit(nil)", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 2, identity, pipeline.Limit(nil))
			}), []string{"fanout#2", "Limit(nil)"}},
			{"Limit(NewLimiter(0))", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 2, identity, pipeline.Limit(pipeline.NewLimiter(0)))
			}), []string{"fanout#2", "Limit"}},
		})
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		assertCancelEndsUnread(t, "fanout#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 4, identity, pipeline.Limit(pipeline.NewLimiter(2)))
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		assertStopDeliversEmitted(t, "fanout#2", false, false, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 4, identity, pipeline.Limit(pipeline.NewLimiter(2)))
		})
	})

	// Regression: FlatMap held its Limiter slot while emit blocked, deadlocking a downstream stage sharing the limiter (issue 6).
	// A FlatMap call holds its Limiter slot while emit blocks on a full output;
	// a downstream stage sharing the limiter then waits for that slot forever
	// and never reads: deadlock (design invariant 6: no deadlock for any input).
	// Found by TestProperty_Limiter_BoundsCallsAcrossStagesAndPipelines (it hung).
	t.Run("a FlatMap blocked on emit does not deadlock a stage sharing its limiter", func(t *testing.T) {
		lim := pipeline.NewLimiter(1)
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		p := pipeline.New(ctx, pipeline.DefaultBuffer(0))
		fm := pipeline.FlatMap(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int, emit func(int) error) error {
			for j := range 3 {
				if err := emit(v*10 + j); err != nil {
					return err
				}
			}
			return nil
		}, pipeline.Limit(lim))
		out := pipeline.FanOut(p, fm, 1, func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Limit(lim))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err, "only the hangBound safety deadline ends it")
		assert.Len(t, got, 9)
	})
}

// weighedItem is an item with a weight, for Weighted.
type weighedItem struct{ id, weight int }

// TestWeighted: a call that holds as many slots as its item weighs.
func TestWeighted(t *testing.T) {
	t.Run("calls hold their weight in slots", func(t *testing.T) {
		const limit = 10
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(limit)
		items := make([]weighedItem, 300)
		for i := range items {
			items[i] = weighedItem{id: i, weight: 1 + (i*7)%6} // 1..6
		}
		var held gauge
		var calls gauge
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, items...), 8, pipeline.Weighted(l,
			func(it weighedItem) int { return it.weight },
			func(_ context.Context, it weighedItem) (int, error) {
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
	})

	t.Run("heavy items share the limit exactly", func(t *testing.T) {
		// Weight 4 under a limit of 10: two calls fit (8 slots), a third never.
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(10)
		var g gauge
		reached := make(chan struct{})
		var once sync.Once
		inner := reach(&g, 2, reached, &once)
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(50)...), 6, pipeline.Weighted(l,
			func(int) int { return 4 },
			func(ctx context.Context, v int) (int, error) {
				assert.LessOrEqual(t, l.InUse(), 10)
				return inner(ctx, v)
			}))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Len(t, got, 50)
		assert.Equal(t, int64(2), g.peak.Load())
	})

	t.Run("a weight below one counts as one", func(t *testing.T) {
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
	})

	t.Run("a weight above the limit fails", func(t *testing.T) {
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
	})

	t.Run("nil arguments fail every call", func(t *testing.T) {
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
	})

	t.Run("cancel while waiting for slots ends promptly", func(t *testing.T) {
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
	})

	// Regression: Weighted with Limit on the same limiter could deadlock: a call held its Limit slot while waiting for its weight (issue 3).
	// Weighted and Limit on the same limiter: a call holding its Limit slot while
	// waiting for its weight could deadlock (alone, or with other workers doing
	// the same), so the combination is rejected with ErrInvalidArgument.
	t.Run("with Limit on the same limiter is rejected", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		l := pipeline.NewLimiter(2)
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, pipeline.Weighted(l,
			func(int) int { return 2 },
			func(_ context.Context, v int) (int, error) { return v, nil }), pipeline.Limit(l))
		_, err := pipeline.Collect(p, out)
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "the pipeline hung until its deadline")
		assert.ErrorIs(t, err, pipeline.ErrInvalidArgument, "Weighted with Limit on the same limiter is rejected")
	})
}
