package pipeline_test

// Tests of pipeline.go: New, the parent context, Wait, Stop, Shutdown and
// a nil *Pipeline.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
)

// TestNew: a pipeline and its options.
func TestNew(t *testing.T) {
	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"New nil ctx", func() *pipeline.Pipeline { return pipeline.New(nilCtx) },
				func(*pipeline.Pipeline) built { return built{} }, []string{"New", "context"}},
			{"DefaultBuffer negative", func() *pipeline.Pipeline { return pipeline.New(context.Background(), pipeline.DefaultBuffer(-1)) },
				func(*pipeline.Pipeline) built { return built{} }, []string{"New", "DefaultBuffer(-1)"}},
		})
	})
}

// TestPipeline_ParentCancel: cancelling the context New was given.
func TestPipeline_ParentCancel(t *testing.T) {
	t.Run("Wait returns the parent's cause", func(t *testing.T) {
		custom := errors.New("core: operator abort")
		cases := []struct {
			name   string
			parent func() (context.Context, func())
			want   error
		}{
			{"WithCancel", func() (context.Context, func()) {
				ctx, cancel := context.WithCancel(context.Background())
				return ctx, cancel
			}, context.Canceled},
			{"WithCancelCause", func() (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(context.Background())
				return ctx, func() { cancel(custom) }
			}, custom},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				parent, cancel := tc.parent()
				defer cancel()
				p := pipeline.New(parent)
				seen := make(chan struct{})
				var once sync.Once
				out := pipeline.FanOut(p, counter(p, nil), 3, func(_ context.Context, v int) (int, error) {
					if v == 50 {
						once.Do(func() { close(seen) })
					}
					return v, nil
				})
				go func() {
					<-seen
					cancel()
				}()
				var err error
				within(t, "Drain", func() { err = pipeline.Drain(p, out) })
				assert.Equal(t, tc.want, err)
				assert.Equal(t, context.Cause(parent), err)
				assert.Equal(t, tc.want, p.Wait())
			})
		}
	})

	t.Run("errors the cancel causes are not reported", func(t *testing.T) {
		cause := errors.New("core: operator abort")
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		p := pipeline.New(ctx)
		started := make(chan struct{}, 4)
		// Every call blocks until the pipeline is cancelled, then fails because
		// of it: a consequence, not a new failure.
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(4)...), 4, func(ctx context.Context, v int) (int, error) {
			started <- struct{}{}
			<-ctx.Done()
			return 0, fmt.Errorf("item %d interrupted: %w", v, ctx.Err())
		})
		for range 4 {
			await(t, started, "a blocked call")
		}
		cancel(cause)
		var err error
		within(t, "Drain", func() { err = pipeline.Drain(p, out) })
		assert.Equal(t, cause, err)
		var se *pipeline.StageError
		assert.False(t, errors.As(err, &se), "an error caused by the cancel was reported: %v", err)
	})

	t.Run("ends promptly though nobody reads the output", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		cause := errors.New("core: give up")
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		p := pipeline.New(ctx)

		// A chain of every kind of core stage; only one of Tee's outputs is
		// read, by a stage whose own unbuffered output nobody reads.
		sq := pipeline.FanOut(p, counter(p, nil), 4, identity)
		ord := pipeline.FanOutOrdered(p, sq, 4, identity)
		fm := pipeline.FlatMap(p, ord, 2, func(_ context.Context, v int, emit func(int) error) error {
			if err := emit(v); err != nil {
				return err
			}
			return emit(-v)
		})
		merged := pipeline.Merge(p, pipeline.Partition(p, fm, 3, func(v int) int { return v })...)
		tees := pipeline.Tee(p, pipeline.Filter(p, merged, func(int) bool { return true }), 2)
		progress := make(chan struct{})
		var calls atomic.Int64
		last := pipeline.FanOut(p, tees[0], 2, func(_ context.Context, v int) (int, error) {
			if calls.Add(1) == 2 { // both workers have an item: they will block sending it
				close(progress)
			}
			return v, nil
		}, pipeline.BufferSize(0))
		_ = last // never read

		await(t, progress, "the last stage's calls")
		cancel(cause)
		var err error
		within(t, "Wait", func() { err = p.Wait() })
		assert.Equal(t, cause, err)
	})
}

// TestPipeline_Nil: a nil *Pipeline fails or does nothing, and never panics.
func TestPipeline_Nil(t *testing.T) {
	t.Run("nothing panics", func(t *testing.T) {
		var p *pipeline.Pipeline
		outside := make(chan int) // never closed: nothing may read from it
		id := identity

		assert.NotNil(t, p.Context())
		assert.ErrorIs(t, p.Wait(), pipeline.ErrInvalidArgument)
		assert.NotPanics(t, p.Stop)
		assert.ErrorIs(t, p.Shutdown(context.Background()), pipeline.ErrInvalidArgument)
		assert.Empty(t, p.Stats())
		assert.True(t, strings.HasPrefix(p.Diagram(), "flowchart LR"))

		stages := map[string]func() []<-chan int{
			"Generate": func() []<-chan int { return []<-chan int{pipeline.Generate(p, 1, 2)} },
			"FromSeq":  func() []<-chan int { return []<-chan int{pipeline.FromSeq(p, slices.Values([]int{1}))} },
			"FromChan": func() []<-chan int { return []<-chan int{pipeline.FromChan(p, outside)} },
			"Produce": func() []<-chan int {
				return []<-chan int{pipeline.Produce(p, func(context.Context, func(int) error) error { return nil })}
			},
			"FanOut":        func() []<-chan int { return []<-chan int{pipeline.FanOut(p, outside, 2, id)} },
			"FanOutOrdered": func() []<-chan int { return []<-chan int{pipeline.FanOutOrdered(p, outside, 2, id)} },
			"FlatMap": func() []<-chan int {
				return []<-chan int{pipeline.FlatMap(p, outside, 2, func(context.Context, int, func(int) error) error { return nil })}
			},
			"Filter":    func() []<-chan int { return []<-chan int{pipeline.Filter(p, outside, func(int) bool { return true })} },
			"Merge":     func() []<-chan int { return []<-chan int{pipeline.Merge(p, outside)} },
			"Tee":       func() []<-chan int { return pipeline.Tee(p, outside, 2) },
			"Partition": func() []<-chan int { return pipeline.Partition(p, outside, 2, func(v int) int { return v }) },
		}
		for name, build := range stages {
			var outs []<-chan int
			require.NotPanics(t, func() { outs = build() }, name)
			for _, o := range outs {
				requireClosed(t, o)
			}
		}

		sinks := map[string]func() error{
			"Collect": func() error { _, err := pipeline.Collect(p, outside); return err },
			"ForEach": func() error {
				return pipeline.ForEach(p, outside, 1, func(context.Context, int) error { return nil })
			},
			"Reduce": func() error {
				_, err := pipeline.Reduce(p, outside, 0, func(a, v int) int { return a + v })
				return err
			},
			"First": func() error { _, _, err := pipeline.First(p, outside); return err },
			"Drain": func() error { return pipeline.Drain(p, outside) },
			"All": func() error {
				for range pipeline.All(p, outside) {
					return errors.New("All of a nil pipeline yielded an item")
				}
				return p.Wait()
			},
		}
		for name, run := range sinks {
			var err error
			require.NotPanics(t, func() { err = run() }, name)
			assert.ErrorIs(t, err, pipeline.ErrInvalidArgument, name)
		}
	})
}

// TestWait: the pipeline's one result.
func TestWait(t *testing.T) {
	// Regression: a stage built while Wait was returning on another goroutine neither ran nor failed.
	t.Run("a stage built while Wait returns either runs or fails", func(t *testing.T) {
		for range 300 {
			p := pipeline.New(context.Background())
			first := pipeline.Generate(p, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = pipeline.Drain(p, first)
			}()
			late := pipeline.Generate(p, 7)
			got, err := pipeline.Collect(p, late)
			<-done
			if err == nil {
				assert.Equal(t, []int{7}, got, "a late stage that did not fail ran")
			} else {
				assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			}
		}
	})

	t.Run("before any sink it returns once the stages have, and buffered items stay readable", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.Generate(p, 1, 2, 3)
		require.NoError(t, p.Wait(), "three items fit the 64-slot buffer: the source ended")
		var got []int
		for v := range out {
			got = append(got, v)
		}
		assert.Equal(t, []int{1, 2, 3}, got)
	})

	t.Run("a stage built after it returned is reported by every later call", func(t *testing.T) {
		p := pipeline.New(context.Background())
		require.NoError(t, p.Wait())
		_ = pipeline.Generate(p, 1)
		assert.ErrorIs(t, p.Wait(), pipeline.ErrInvalidArgument)
		assert.ErrorIs(t, p.Wait(), pipeline.ErrInvalidArgument)
	})

	t.Run("many goroutines get the same result", func(t *testing.T) {
		boom := errors.New("boom")
		p := pipeline.New(context.Background())
		release := make(chan struct{})
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) {
			<-release
			return 0, boom
		})
		_ = out // the stage fails before anything is sent
		const waiters = 8
		errs := make([]error, waiters)
		var wg sync.WaitGroup
		for i := range waiters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = p.Wait()
			}()
		}
		close(release)
		wg.Wait()
		var se *pipeline.StageError
		require.ErrorAs(t, errs[0], &se)
		assert.ErrorIs(t, se, boom)
		for i := range errs {
			assert.Same(t, se, errs[i], "waiter %d", i)
		}
		assert.Same(t, se, p.Wait(), "Wait is repeatable")
	})

	t.Run("is repeatable", func(t *testing.T) {
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2, identity)))
		for range 3 {
			assert.NoError(t, p.Wait())
		}
		requireDone(t, p)
	})

	t.Run("a stage built after Wait fails", func(t *testing.T) {
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
		var got []int
		var err error
		require.NotPanics(t, func() {
			got, err = pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2), 1, identity))
		})
		assert.Empty(t, got)
		require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "after Wait")
	})
}

// TestStop: sources stop, everything emitted reaches the sink. The suite
// stoploss_test.go checks every stage at random moments.
func TestStop(t *testing.T) {
	t.Run("every emitted item reaches the sink", func(t *testing.T) {
		middles := []struct {
			name    string
			ordered bool
			build   func(p *pipeline.Pipeline, in <-chan int, fn func(context.Context, int) (int, error)) <-chan int
		}{
			{"FanOut", false, func(p *pipeline.Pipeline, in <-chan int, fn func(context.Context, int) (int, error)) <-chan int {
				return pipeline.FanOut(p, in, 4, fn)
			}},
			{"FanOutOrdered", true, func(p *pipeline.Pipeline, in <-chan int, fn func(context.Context, int) (int, error)) <-chan int {
				return pipeline.FanOutOrdered(p, in, 4, fn)
			}},
			{"FlatMap", false, func(p *pipeline.Pipeline, in <-chan int, fn func(context.Context, int) (int, error)) <-chan int {
				return pipeline.FlatMap(p, in, 4, func(ctx context.Context, v int, emit func(int) error) error {
					r, err := fn(ctx, v)
					if err != nil {
						return err
					}
					return emit(r)
				})
			}},
		}
		for _, m := range middles {
			t.Run(m.name, func(t *testing.T) {
				var emitted, calls atomic.Int64
				p := pipeline.New(context.Background())
				out := m.build(p, counter(p, &emitted), func(_ context.Context, v int) (int, error) {
					if calls.Add(1) == 100 {
						p.Stop()
					}
					time.Sleep(100 * time.Microsecond) // slow workers: items are in flight at Stop
					return v, nil
				})
				got, err := pipeline.Collect(p, out)
				require.NoError(t, err)
				require.Len(t, got, int(emitted.Load()), "every emitted item must reach the sink")
				assert.GreaterOrEqual(t, len(got), 100)
				if m.ordered {
					assert.Equal(t, ints(len(got)), got)
				} else {
					slices.Sort(got)
					assert.Equal(t, ints(len(got)), got)
				}
			})
		}
	})

	t.Run("sources end cleanly", func(t *testing.T) {
		const many = 100_000
		sources := []struct {
			name  string
			build func(t *testing.T, p *pipeline.Pipeline) <-chan int
		}{
			{"Generate", func(_ *testing.T, p *pipeline.Pipeline) <-chan int {
				return pipeline.Generate(p, ints(many)...)
			}},
			{"FromSeq", func(_ *testing.T, p *pipeline.Pipeline) <-chan int {
				return pipeline.FromSeq(p, iter.Seq[int](func(yield func(int) bool) {
					for i := 0; ; i++ {
						if !yield(i) {
							return
						}
					}
				}))
			}},
			{"FromChan", func(t *testing.T, p *pipeline.Pipeline) <-chan int {
				ch := make(chan int)
				quit := make(chan struct{})
				fed := make(chan struct{})
				go func() {
					defer close(fed)
					for i := 0; ; i++ {
						select {
						case ch <- i:
						case <-quit:
							return
						}
					}
				}()
				t.Cleanup(func() {
					close(quit)
					<-fed
				})
				return pipeline.FromChan(p, ch)
			}},
			{"Produce", func(_ *testing.T, p *pipeline.Pipeline) <-chan int {
				return counter(p, nil)
			}},
		}
		for _, src := range sources {
			t.Run(src.name, func(t *testing.T) {
				p := pipeline.New(context.Background())
				var calls atomic.Int64
				out := pipeline.FanOut(p, src.build(t, p), 2, func(_ context.Context, v int) (int, error) {
					if calls.Add(1) == 50 {
						p.Stop()
					}
					return v, nil
				})
				var got []int
				var err error
				within(t, "Collect", func() { got, err = pipeline.Collect(p, out) })
				require.NoError(t, err)
				assert.GreaterOrEqual(t, len(got), 50)
				assert.Less(t, len(got), many, "the source must stop early")
				slices.Sort(got)
				assert.Equal(t, ints(len(got)), got, "the items emitted are a prefix, none lost")
			})
		}
	})
}

// TestShutdown: Stop, then wait for the pipeline to drain, within a context.
func TestShutdown(t *testing.T) {
	// Regression: Shutdown with a deadline from inside a ForEach function deadlocked forever.
	t.Run("from inside a stage's function drains everything else and returns", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var emitted atomic.Int64
		src := counter(p, &emitted)
		handled := 0
		shut := make(chan error, 1)
		var err error
		within(t, "ForEach", func() {
			err = pipeline.ForEach(p, src, 1, func(_ context.Context, v int) error {
				handled++
				if v == 5 {
					ctx, cancel := context.WithTimeout(context.Background(), hangBound)
					defer cancel()
					shut <- p.Shutdown(ctx)
				}
				return nil
			})
		})
		require.NoError(t, err)
		assert.NoError(t, <-shut, "everything but the calling call drained")
		assert.Equal(t, int(emitted.Load()), handled, "nothing lost")
	})

	// Regression: the same, when the drain cannot finish before the deadline.
	t.Run("from inside a stage's function cancels at its deadline", func(t *testing.T) {
		p := pipeline.New(context.Background())
		shut := make(chan error, 1)
		var err error
		within(t, "ForEach", func() {
			err = pipeline.ForEach(p, pipeline.Generate(p, 0, 1), 2, func(ctx context.Context, v int) error {
				if v == 0 {
					<-ctx.Done() // holds the drain up until the cancel
					return ctx.Err()
				}
				ctx2, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
				defer cancel()
				shut <- p.Shutdown(ctx2)
				return nil
			})
		})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NoError(t, <-shut, "it returned at once, without waiting for its own caller")
	})

	t.Run("from inside a source's function returns at once and the rest drains", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			for i := 0; ; i++ {
				if i == 10 {
					ctx, cancel := context.WithTimeout(context.Background(), hangBound)
					defer cancel()
					assert.NoError(t, p.Shutdown(ctx))
				}
				if err := emit(i); err != nil {
					return err
				}
			}
		})
		var got []int
		within(t, "Collect", func() {
			var err error
			got, err = pipeline.Collect(p, pipeline.Throttle(p, src, time.Microsecond, 4))
			assert.NoError(t, err)
		})
		assert.Equal(t, ints(10), got)
	})

	t.Run("its deadline error names the stages still blocked and on what", func(t *testing.T) {
		p := pipeline.New(context.Background())
		l := pipeline.NewLimiter(1)
		held := make(chan struct{})
		// A stage whose output nobody reads, and its source blocked behind
		// it; a FanOut whose two workers wait on one Limiter slot held by a
		// call that never returns by itself.
		_ = pipeline.FanOut(p, pipeline.Generate(p, ints(200)...), 1, identity, pipeline.Name("stuck"))
		var once sync.Once
		_ = pipeline.FanOut(p, pipeline.Generate(p, 1, 2), 2, func(ctx context.Context, v int) (int, error) {
			once.Do(func() { close(held) }) // the call that got the slot
			<-ctx.Done()
			return v, ctx.Err()
		}, pipeline.Limit(l), pipeline.Name("calls"))
		await(t, held, "the first call")
		require.Eventually(t, func() bool {
			g, s := stageStats(t, p, "generate#1"), stageStats(t, p, "stuck")
			return g.QueueLen == g.QueueCap && s.QueueLen == s.QueueCap && stageStats(t, p, "calls").Busy == 2
		}, hangBound, time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		var err error
		within(t, "Shutdown", func() { err = p.Shutdown(ctx) })
		var se *pipeline.ShutdownError
		require.ErrorAs(t, err, &se)
		msg := err.Error()
		assert.Contains(t, msg, "generate#1: sending to a full output (64/64)")
		assert.Contains(t, msg, "stuck: its output is read by no stage or sink")
		assert.Contains(t, msg, "calls: its output is read by no stage or sink")
		assert.Contains(t, msg, "waiting for a Limiter slot (1 of 1 in use)")
		assert.Contains(t, msg, "in a user call (2 of 2 workers)")
		assert.Len(t, se.Running, 3)
	})

	t.Run("returns nil when it drains in time", func(t *testing.T) {
		var emitted atomic.Int64
		p := pipeline.New(context.Background())
		progress := make(chan struct{})
		var calls atomic.Int64
		out := pipeline.FanOut(p, counter(p, &emitted), 3, func(_ context.Context, v int) (int, error) {
			if calls.Add(1) == 50 {
				close(progress)
			}
			time.Sleep(50 * time.Microsecond)
			return v, nil
		})
		type result struct {
			items []int
			err   error
		}
		collected := make(chan result, 1)
		go func() {
			items, err := pipeline.Collect(p, out)
			collected <- result{items, err}
		}()
		await(t, progress, "50 calls")
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		require.NoError(t, p.Shutdown(ctx))
		res := <-collected
		require.NoError(t, res.err)
		assert.Len(t, res.items, int(emitted.Load()))
		assert.NoError(t, p.Wait())
	})

	t.Run("returns ctx's error when it cannot drain in time", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		p := pipeline.New(context.Background())
		var live atomic.Int64
		started := make(chan struct{}, 2)
		// The workers only return once the pipeline is cancelled: Stop alone
		// cannot drain it.
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), 2, func(ctx context.Context, v int) (int, error) {
			live.Add(1)
			defer live.Add(-1)
			started <- struct{}{}
			<-ctx.Done()
			return v, ctx.Err()
		})
		await(t, started, "a first call")
		await(t, started, "a second call")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		var err error
		within(t, "Shutdown", func() { err = p.Shutdown(ctx) })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var se *pipeline.ShutdownError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, []string{"fanout#2: its output is read by no stage or sink, in a user call (2 of 2 workers)"}, se.Running)
		// When Shutdown returns, every goroutine of the pipeline has returned:
		// no call is running and the output is closed.
		assert.Zero(t, live.Load())
		requireClosed(t, out)
		assert.ErrorIs(t, p.Wait(), context.DeadlineExceeded)
	})

	t.Run("a nil context is an invalid argument", func(t *testing.T) {
		var nilCtx context.Context
		p := pipeline.New(context.Background())
		assert.ErrorIs(t, p.Shutdown(nilCtx), pipeline.ErrInvalidArgument)
		assert.NoError(t, p.Wait())
	})

	// Regression: Shutdown with an ended context after the finish made Wait return the context's cause.
	// Shutdown with a context that is already done, on a pipeline that has
	// already finished: nothing was lost, so Shutdown returns nil and Wait stays
	// nil ("each call returns the same result").
	t.Run("with an ended context after the finish keeps Wait's nil", func(t *testing.T) {
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
		require.NoError(t, p.Wait())

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.NoError(t, p.Shutdown(ctx), "the pipeline had already finished")
		assert.NoError(t, p.Wait(), "Wait returned nil before; it must keep returning it")
	})

	// Regression: Shutdown recorded an ended context's cause after Wait had returned nil (issue 6, chaos run).
	// Shutdown whose context ends while (or after) the pipeline finishes
	// recorded ctx's cause even though Wait had already returned nil: later Wait
	// calls returned it, breaking "each call returns the same result". Found by
	// the chaos run (action "shutdown").
	t.Run("an ended context racing the finish keeps Wait's nil", func(t *testing.T) {
		for range 50 {
			p := pipeline.New(context.Background())
			require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // already over: Shutdown's select may pick it over the finished Wait
			_ = p.Shutdown(ctx)
			require.NoError(t, p.Wait(), "Wait returned nil before; it must keep returning nil")
		}
	})
}
