package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
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

// ---- helpers (prefixed core) ----

// ---- ordering ----

func TestFanOutOrdered_PreservesOrderUnderRandomDelay(t *testing.T) {
	const n = 300
	for _, workers := range []int{1, 2, 5, 16} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			p := pipeline.New(context.Background())
			out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(n)...), workers,
				func(_ context.Context, v int) (string, error) {
					d := rand.N(200 * time.Microsecond)
					if v%40 == 0 {
						d = 2 * time.Millisecond // a slow head: later results must wait for it
					}
					time.Sleep(d)
					return strconv.Itoa(v), nil
				})
			got, err := pipeline.Collect(p, out)
			require.NoError(t, err)
			want := make([]string, n)
			for i := range want {
				want[i] = strconv.Itoa(i)
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestFanOutOrdered_SkippedItemsLeaveNoGap(t *testing.T) {
	const n = 300
	skip := errors.New("skip")
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			p := pipeline.New(context.Background())
			out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(n)...), workers,
				func(_ context.Context, v int) (int, error) {
					time.Sleep(rand.N(100 * time.Microsecond))
					if v%3 == 0 {
						return 0, skip
					}
					return v, nil
				}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
			got, err := pipeline.Collect(p, out)
			require.NoError(t, err)
			var want []int
			for i := range n {
				if i%3 != 0 {
					want = append(want, i)
				}
			}
			assert.Equal(t, want, got)
			st := stageStats(t, p, "fanoutordered#2")
			assert.Equal(t, uint64(n/3), st.Errors)
			assert.Equal(t, uint64(len(want)), st.Out)
		})
	}
}

// ---- concurrency ----

func TestWorkerStages_ConcurrencyNeverExceedsWorkers(t *testing.T) {
	// run builds the stage under test on in with workers goroutines, each item
	// going through call, and consumes it to the end.
	type run func(p *pipeline.Pipeline, in <-chan int, workers int, call func(context.Context)) error
	stages := []struct {
		name string
		run  run
	}{
		{"FanOut", func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.Drain(p, pipeline.FanOut(p, in, w, func(ctx context.Context, v int) (int, error) {
				call(ctx)
				return v, nil
			}))
		}},
		{"FanOutOrdered", func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.Drain(p, pipeline.FanOutOrdered(p, in, w, func(ctx context.Context, v int) (int, error) {
				call(ctx)
				return v, nil
			}))
		}},
		{"FlatMap", func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.Drain(p, pipeline.FlatMap(p, in, w, func(ctx context.Context, v int, emit func(int) error) error {
				call(ctx)
				return emit(v)
			}))
		}},
		{"ForEach", func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.ForEach(p, in, w, func(ctx context.Context, _ int) error {
				call(ctx)
				return nil
			})
		}},
	}
	for _, st := range stages {
		for _, workers := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("%s/workers=%d", st.name, workers), func(t *testing.T) {
				var peak gauge
				// The first calls wait until workers calls run together, so the
				// peak must reach workers exactly; it must never pass it.
				reached := make(chan struct{})
				var once sync.Once
				var stuck atomic.Bool
				call := func(ctx context.Context) {
					if peak.enter() == int64(workers) {
						once.Do(func() { close(reached) })
					}
					defer peak.leave()
					select {
					case <-reached:
					case <-time.After(hangBound):
						stuck.Store(true)
					}
					time.Sleep(rand.N(50 * time.Microsecond))
				}
				p := pipeline.New(context.Background())
				err := st.run(p, pipeline.Generate(p, ints(200)...), workers, call)
				require.NoError(t, err)
				assert.False(t, stuck.Load(), "never reached %d concurrent calls", workers)
				assert.Equal(t, int64(workers), peak.peak.Load())
			})
		}
	}
}

// ---- errors ----

func TestFirstError_CancelsPipelineAndIsReportedOnce(t *testing.T) {
	boom := errors.New("boom")
	late := errors.New("late error after cancel")
	// Items 0..2 hold three workers until the pipeline is cancelled, then
	// fail with late; item 3 (on the fourth worker) fails first, with boom.
	build := func(p *pipeline.Pipeline) <-chan int {
		started := make(chan struct{}, 3)
		return pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), 4,
			func(ctx context.Context, v int) (int, error) {
				switch {
				case v < 3:
					started <- struct{}{}
					<-ctx.Done()
					return 0, late
				case v == 3:
					for range 3 {
						<-started
					}
					return 0, boom
				}
				return v, nil
			})
	}
	sinks := []struct {
		name string
		sink func(p *pipeline.Pipeline, in <-chan int) error
	}{
		{"Collect", func(p *pipeline.Pipeline, in <-chan int) error {
			_, err := pipeline.Collect(p, in)
			return err
		}},
		{"Drain", pipeline.Drain[int]},
		{"Reduce", func(p *pipeline.Pipeline, in <-chan int) error {
			_, err := pipeline.Reduce(p, in, 0, func(a, v int) int { return a + v })
			return err
		}},
		{"ForEach", func(p *pipeline.Pipeline, in <-chan int) error {
			return pipeline.ForEach(p, in, 2, func(context.Context, int) error { return nil })
		}},
		{"All", func(p *pipeline.Pipeline, in <-chan int) error {
			for range pipeline.All(p, in) {
			}
			return p.Wait()
		}},
	}
	for _, sk := range sinks {
		t.Run(sk.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			err := sk.sink(p, build(p))

			var se *pipeline.StageError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "fanout#2", se.Stage)
			assert.Equal(t, 3, se.Item)
			assert.Equal(t, boom, se.Err)
			assert.ErrorIs(t, err, boom)
			assert.NotErrorIs(t, err, late)
			assert.Contains(t, err.Error(), "fanout#2")
			assert.Contains(t, err.Error(), "boom")

			assert.Same(t, se, p.Wait(), "Wait must return the very error the sink returned")
			select {
			case <-p.Context().Done():
			default:
				require.Fail(t, "pipeline context not done after a failure")
			}
			assert.Same(t, se, context.Cause(p.Context()))
		})
	}
}

func TestPanic_InEveryUserFunctionIsRecoveredAsPanicError(t *testing.T) {
	const boom = "core: boom"
	fail := errors.New("item failed")
	cases := []struct {
		name  string
		stage string
		item  any
		run   func(p *pipeline.Pipeline) error
	}{
		{"FanOut fn", "fanout#2", 2, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2,
				func(_ context.Context, v int) (int, error) {
					if v == 2 {
						panic(boom)
					}
					return v, nil
				}))
		}},
		{"FanOutOrdered fn", "fanoutordered#2", 2, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3), 2,
				func(_ context.Context, v int) (int, error) {
					if v == 2 {
						panic(boom)
					}
					return v, nil
				}))
		}},
		{"FlatMap fn", "flatmap#2", 2, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.FlatMap(p, pipeline.Generate(p, 1, 2, 3), 2,
				func(_ context.Context, v int, emit func(int) error) error {
					if v == 2 {
						panic(boom)
					}
					return emit(v)
				}))
		}},
		{"Filter keep", "filter#2", 2, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.Filter(p, pipeline.Generate(p, 1, 2, 3), func(v int) bool {
				if v == 2 {
					panic(boom)
				}
				return true
			}))
		}},
		{"Partition route", "partition#2", 2, func(p *pipeline.Pipeline) error {
			outs := pipeline.Partition(p, pipeline.Generate(p, 1, 2, 3), 2, func(v int) int {
				if v == 2 {
					panic(boom)
				}
				return v
			})
			return pipeline.Drain(p, pipeline.Merge(p, outs...))
		}},
		{"Produce fn", "produce#1", nil, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
				if err := emit(1); err != nil {
					return err
				}
				panic(boom)
			}))
		}},
		{"FromSeq seq", "fromseq#1", nil, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.FromSeq(p, iter.Seq[int](func(yield func(int) bool) {
				if !yield(1) {
					return
				}
				panic(boom)
			})))
		}},
		{"Reduce fn", "reduce", 2, func(p *pipeline.Pipeline) error {
			_, err := pipeline.Reduce(p, pipeline.Generate(p, 1, 2, 3), 0, func(a, v int) int {
				if v == 2 {
					panic(boom)
				}
				return a + v
			})
			return err
		}},
		{"OnError handler", "fanout#2", 2, func(p *pipeline.Pipeline) error {
			return pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2,
				func(_ context.Context, v int) (int, error) {
					if v == 2 {
						return 0, fail
					}
					return v, nil
				}, pipeline.OnError(func(*pipeline.StageError) error { panic(boom) })))
		}},
		{"ForEach fn", "foreach#2", 2, func(p *pipeline.Pipeline) error {
			return pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3), 2, func(_ context.Context, v int) error {
				if v == 2 {
					panic(boom)
				}
				return nil
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			var err error
			within(t, "the sink", func() { err = tc.run(p) })

			var se *pipeline.StageError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.stage, se.Stage)
			assert.Equal(t, tc.item, se.Item)
			var pe *pipeline.PanicError
			require.ErrorAs(t, se.Err, &pe, "the StageError must hold the PanicError")
			assert.Equal(t, boom, pe.Value)
			assert.NotEmpty(t, pe.Stack)
			assert.Contains(t, string(pe.Stack), "pipeline_test.go",
				"the stack must be the panicking goroutine's")
			assert.Contains(t, err.Error(), boom)
			assert.Equal(t, err, p.Wait())
		})
	}
}

func TestPanic_WithErrorValueIsReachableByErrorsIs(t *testing.T) {
	cause := errors.New("core: panicked with an error")
	p := pipeline.New(context.Background())
	err := pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1), 1,
		func(context.Context, int) (int, error) { panic(cause) }))
	var pe *pipeline.PanicError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, cause)
}

func TestParentCancel_WaitReturnsParentCause(t *testing.T) {
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
}

func TestParentCancel_ErrorsItCausesAreNotReported(t *testing.T) {
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
}

func TestCancel_FinishesPromptlyWhenNobodyReadsTheOutput(t *testing.T) {
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
}

// ---- Stop and Shutdown ----

func TestStop_EveryEmittedItemReachesTheSink(t *testing.T) {
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
}

func TestStop_SourcesEndCleanly(t *testing.T) {
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
}

func TestShutdown_ReturnsNilWhenItDrainsInTime(t *testing.T) {
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
}

func TestShutdown_ReturnsCtxErrWhenItCannotDrainInTime(t *testing.T) {
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
	assert.Equal(t, context.DeadlineExceeded, err)
	// When Shutdown returns, every goroutine of the pipeline has returned:
	// no call is running and the output is closed.
	assert.Zero(t, live.Load())
	requireClosed(t, out)
	assert.ErrorIs(t, p.Wait(), context.DeadlineExceeded)
}

// ---- invalid arguments ----

func TestInvalidArgument_FailsWithNamedStageAndArgument(t *testing.T) {
	bg := context.Background()
	good := func(p *pipeline.Pipeline) <-chan int { return pipeline.Generate(p, 1, 2, 3) }
	id := identity
	flat := func(_ context.Context, v int, emit func(int) error) error { return emit(v) }
	each := func(context.Context, int) error { return nil }
	var nilCtx context.Context
	var nilIn <-chan int
	var nilFn func(context.Context, int) (int, error)
	var nilFlat func(context.Context, int, func(int) error) error
	var nilEach func(context.Context, int) error
	var nilSeq iter.Seq[int]
	var nilProduce func(context.Context, func(int) error) error

	// outs: stage outputs that must be closed at once; err: what a sink returned.
	type result struct {
		outs []<-chan int
		err  error
		sink bool
	}
	stage := func(outs ...<-chan int) result { return result{outs: outs} }
	sink := func(err error) result { return result{err: err, sink: true} }

	cases := []struct {
		name  string
		newP  func() *pipeline.Pipeline // nil: New(context.Background())
		build func(p *pipeline.Pipeline) result
		want  []string // substrings of the message: the stage and the argument
	}{
		{"New nil ctx", func() *pipeline.Pipeline { return pipeline.New(nilCtx) },
			func(*pipeline.Pipeline) result { return result{} }, []string{"New", "context"}},
		{"DefaultBuffer negative", func() *pipeline.Pipeline { return pipeline.New(bg, pipeline.DefaultBuffer(-1)) },
			func(*pipeline.Pipeline) result { return result{} }, []string{"New", "DefaultBuffer(-1)"}},

		{"FanOut workers 0", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, good(p), 0, id)) },
			[]string{"fanout#2", "workers"}},
		{"FanOut workers negative", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, good(p), -3, id)) },
			[]string{"fanout#2", "workers"}},
		{"FanOut nil fn", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, good(p), 2, nilFn)) },
			[]string{"fanout#2", "fn"}},
		{"FanOut nil in", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, nilIn, 2, id)) },
			[]string{"fanout#1", "input"}},
		{"FanOut named", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOut(p, good(p), 0, id, pipeline.Name("square")))
		}, []string{"square", "workers"}},
		{"FanOut BufferSize negative", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOut(p, good(p), 1, id, pipeline.BufferSize(-1)))
		}, []string{"fanout#2", "BufferSize(-1)"}},
		{"FanOut OnError nil", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOut(p, good(p), 1, id, pipeline.OnError(nil)))
		}, []string{"fanout#2", "OnError"}},

		{"FanOutOrdered workers 0", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOutOrdered(p, good(p), 0, id))
		}, []string{"fanoutordered#2", "workers"}},
		{"FanOutOrdered workers negative", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOutOrdered(p, good(p), -1, id))
		}, []string{"fanoutordered#2", "workers"}},
		{"FanOutOrdered nil fn", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOutOrdered(p, good(p), 1, nilFn))
		}, []string{"fanoutordered#2", "fn"}},
		{"FanOutOrdered nil in", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FanOutOrdered(p, nilIn, 1, id))
		}, []string{"fanoutordered#1", "input"}},

		{"FlatMap workers 0", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FlatMap(p, good(p), 0, flat)) },
			[]string{"flatmap#2", "workers"}},
		{"FlatMap workers negative", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FlatMap(p, good(p), -7, flat)) },
			[]string{"flatmap#2", "workers"}},
		{"FlatMap nil fn", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FlatMap(p, good(p), 1, nilFlat)) },
			[]string{"flatmap#2", "fn"}},
		{"FlatMap nil in", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FlatMap(p, nilIn, 1, flat)) },
			[]string{"flatmap#1", "input"}},

		{"Filter nil keep", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Filter(p, good(p), nil)) },
			[]string{"filter#2", "keep"}},
		{"Filter nil in", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.Filter(p, nilIn, func(int) bool { return true }))
		}, []string{"filter#1", "input"}},
		{"Filter with Timeout", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.Filter(p, good(p), func(int) bool { return true }, pipeline.Timeout(time.Second)))
		}, []string{"filter#2", "Timeout"}},

		{"Tee n 0", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Tee(p, good(p), 0)...) },
			[]string{"tee#2", "n = 0"}},
		{"Tee n negative", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Tee(p, good(p), -2)...) },
			[]string{"tee#2", "n = -2"}},
		{"Tee nil in", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Tee(p, nilIn, 2)...) },
			[]string{"tee#1", "input"}},

		{"Partition n 0", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.Partition(p, good(p), 0, func(v int) int { return v })...)
		}, []string{"partition#2", "n = 0"}},
		{"Partition n negative", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.Partition(p, good(p), -1, func(v int) int { return v })...)
		}, []string{"partition#2", "n = -1"}},
		{"Partition nil route", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Partition(p, good(p), 2, nil)...) },
			[]string{"partition#2", "route"}},
		{"Partition nil in", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.Partition(p, nilIn, 2, func(v int) int { return v })...)
		}, []string{"partition#1", "input"}},

		{"Merge nil input", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Merge(p, good(p), nilIn)) },
			[]string{"merge#2", "input 1"}},

		{"FromSeq nil seq", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FromSeq(p, nilSeq)) },
			[]string{"fromseq#1", "seq"}},
		{"FromSeq with OnError", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.FromSeq(p, slices.Values([]int{1}),
				pipeline.OnError(func(*pipeline.StageError) error { return nil })))
		}, []string{"fromseq#1", "OnError"}},
		{"FromChan nil channel", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FromChan(p, nilIn)) },
			[]string{"fromchan#1", "channel"}},
		{"Produce nil fn", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.Produce(p, nilProduce)) },
			[]string{"produce#1", "fn"}},
		{"Produce BufferSize negative", nil, func(p *pipeline.Pipeline) result {
			return stage(pipeline.Produce(p, func(context.Context, func(int) error) error { return nil }, pipeline.BufferSize(-4)))
		}, []string{"produce#1", "BufferSize(-4)"}},

		{"ForEach workers 0", nil, func(p *pipeline.Pipeline) result { return sink(pipeline.ForEach(p, good(p), 0, each)) },
			[]string{"foreach#2", "workers"}},
		{"ForEach workers negative", nil, func(p *pipeline.Pipeline) result { return sink(pipeline.ForEach(p, good(p), -1, each)) },
			[]string{"foreach#2", "workers"}},
		{"ForEach nil fn", nil, func(p *pipeline.Pipeline) result { return sink(pipeline.ForEach(p, good(p), 1, nilEach)) },
			[]string{"foreach#2", "fn"}},
		{"ForEach nil in", nil, func(p *pipeline.Pipeline) result { return sink(pipeline.ForEach(p, nilIn, 1, each)) },
			[]string{"foreach#1", "input"}},
		{"Collect nil in", nil, func(p *pipeline.Pipeline) result {
			_, err := pipeline.Collect(p, nilIn)
			return sink(err)
		}, []string{"collect", "input"}},
		{"Reduce nil fn", nil, func(p *pipeline.Pipeline) result {
			_, err := pipeline.Reduce[int, int](p, good(p), 0, nil)
			return sink(err)
		}, []string{"reduce", "fn"}},
		{"Reduce nil in", nil, func(p *pipeline.Pipeline) result {
			_, err := pipeline.Reduce(p, nilIn, 0, func(a, v int) int { return a + v })
			return sink(err)
		}, []string{"reduce", "input"}},
		{"First nil in", nil, func(p *pipeline.Pipeline) result {
			_, _, err := pipeline.First(p, nilIn)
			return sink(err)
		}, []string{"first", "input"}},
		{"Drain nil in", nil, func(p *pipeline.Pipeline) result { return sink(pipeline.Drain(p, nilIn)) },
			[]string{"drain", "input"}},
		{"All nil in", nil, func(p *pipeline.Pipeline) result {
			n := 0
			for range pipeline.All(p, nilIn) {
				n++
			}
			if n != 0 {
				return sink(fmt.Errorf("All over a nil channel yielded %d items", n))
			}
			return sink(p.Wait())
		}, []string{"all", "input"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(bg)
			if tc.newP != nil {
				p = tc.newP()
			}
			res := tc.build(p)
			for _, o := range res.outs {
				requireClosed(t, o)
			}
			var err error
			within(t, "Wait", func() { err = p.Wait() })
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if res.sink {
				assert.Equal(t, err, res.err, "the sink and Wait report the same error")
			}
			assert.ErrorIs(t, context.Cause(p.Context()), pipeline.ErrInvalidArgument,
				"the pipeline's context is done with the failure")
		})
	}
}

func TestInvalidArgument_ShutdownWithNilContext(t *testing.T) {
	var nilCtx context.Context
	p := pipeline.New(context.Background())
	assert.ErrorIs(t, p.Shutdown(nilCtx), pipeline.ErrInvalidArgument)
	assert.NoError(t, p.Wait())
}

func TestNilPipeline_NothingPanics(t *testing.T) {
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
}

// ---- early exit ----

func TestFirst_ExitsEarlyWithoutErrorOrLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, counter(p, nil), 4, func(_ context.Context, v int) (int, error) {
		return v * 10, nil
	})
	var v int
	var ok bool
	var err error
	within(t, "First", func() { v, ok, err = pipeline.First(p, out) })
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Zero(t, v%10, "the item went through the FanOut")
	assert.NoError(t, p.Wait())
	requireDone(t, p)
}

func TestFirst_ErrorsItCausesUpstreamAreNotFailures(t *testing.T) {
	p := pipeline.New(context.Background())
	// Item 0 goes through; every later call waits for the early exit and
	// then fails because of it.
	out := pipeline.FanOutOrdered(p, counter(p, nil), 4, func(ctx context.Context, v int) (int, error) {
		if v == 0 {
			return v, nil
		}
		<-ctx.Done()
		return 0, fmt.Errorf("item %d interrupted: %w", v, ctx.Err())
	})
	var v int
	var ok bool
	var err error
	within(t, "First", func() { v, ok, err = pipeline.First(p, out) })
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 0, v)
	assert.NoError(t, p.Wait())
}

func TestFirst_OnEmptyInputReportsNoItem(t *testing.T) {
	p := pipeline.New(context.Background())
	v, ok, err := pipeline.First(p, pipeline.Generate[int](p))
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Zero(t, v)
}

func TestAll_BreakExitsEarlyWithoutErrorOrLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, counter(p, nil), 4, identity)
	var got []int
	within(t, "the range loop", func() {
		for v := range pipeline.All(p, out) {
			got = append(got, v)
			if len(got) == 5 {
				break
			}
		}
	})
	assert.Len(t, got, 5)
	assert.NoError(t, p.Wait())
	requireDone(t, p)
}

func TestAll_RangesOverEveryItem(t *testing.T) {
	p := pipeline.New(context.Background())
	var got []int
	for v := range pipeline.All(p, pipeline.Generate(p, ints(100)...)) {
		got = append(got, v)
	}
	assert.Equal(t, ints(100), got)
	assert.NoError(t, p.Wait())
}

// ---- Tee, Partition, Merge ----

func TestTee_SendsEveryItemToEveryOutputInOrder(t *testing.T) {
	const n = 200
	for _, outputs := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("n=%d", outputs), func(t *testing.T) {
			p := pipeline.New(context.Background())
			outs := pipeline.Tee(p, pipeline.Generate(p, ints(n)...), outputs)
			require.Len(t, outs, outputs)
			got := readAll(outs)
			require.NoError(t, p.Wait())
			for i := range got {
				assert.Equal(t, ints(n), got[i], "output %d", i)
			}
			st := stageStats(t, p, "tee#2")
			assert.Equal(t, uint64(n), st.In)
			assert.Equal(t, uint64(n), st.Out)
		})
	}
}

func TestPartition_RoutesEachItemToRouteModN(t *testing.T) {
	routes := []int{0, 1, 2, 3, 4, 5, -1, -2, -3, -4, -5, -7, 7, 100, -100,
		math.MaxInt, math.MaxInt - 1, math.MinInt, math.MinInt + 1}
	for _, n := range []int{1, 3, 4} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			p := pipeline.New(context.Background())
			outs := pipeline.Partition(p, pipeline.Generate(p, routes...), n, func(v int) int { return v })
			require.Len(t, outs, n)
			got := readAll(outs)
			require.NoError(t, p.Wait())
			want := make([][]int, n)
			for _, r := range routes {
				i := ((r % n) + n) % n
				want[i] = append(want[i], r)
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestMerge_SendsEveryItemOfEveryInput(t *testing.T) {
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
}

func TestMerge_WithNoInputsIsClosed(t *testing.T) {
	p := pipeline.New(context.Background())
	requireClosed(t, pipeline.Merge[int](p))
	assert.NoError(t, p.Wait())
}

func TestOutsideChannel_IsAdoptedByMergeAndFanOut(t *testing.T) {
	stages := map[string]func(p *pipeline.Pipeline, outside <-chan int) <-chan int{
		"Merge": func(p *pipeline.Pipeline, outside <-chan int) <-chan int {
			return pipeline.Merge(p, outside, pipeline.Generate(p, ints(100)[50:]...))
		},
		"FanOut": func(p *pipeline.Pipeline, outside <-chan int) <-chan int {
			return pipeline.FanOut(p, outside, 3, identity)
		},
	}
	for name, build := range stages {
		t.Run(name, func(t *testing.T) {
			outside := make(chan int)
			go func() {
				defer close(outside)
				for i := range 50 {
					outside <- i
				}
			}()
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, build(p, outside))
			require.NoError(t, err)
			slices.Sort(got)
			want := ints(50)
			if name == "Merge" {
				want = ints(100)
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestOutsideChannel_CancelStillEndsTheStage(t *testing.T) {
	stages := map[string]func(p *pipeline.Pipeline, outside <-chan int) <-chan int{
		"Merge": func(p *pipeline.Pipeline, outside <-chan int) <-chan int { return pipeline.Merge(p, outside) },
		"FanOut": func(p *pipeline.Pipeline, outside <-chan int) <-chan int {
			return pipeline.FanOut(p, outside, 3, identity)
		},
	}
	for name, build := range stages {
		t.Run(name, func(t *testing.T) {
			cause := errors.New("core: cancelled")
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			p := pipeline.New(ctx)
			outside := make(chan int, 1) // never closed
			outside <- 1
			out := build(p, outside)
			got := <-out // the stage works...
			assert.Equal(t, 1, got)
			cancel(cause) // ...and cancel ends it though its input never closes
			var err error
			within(t, "Drain", func() { err = pipeline.Drain(p, out) })
			assert.Equal(t, cause, err)
		})
	}
}

// ---- Stats ----

func TestStats_FanOutConservesItemsWithSkippedErrors(t *testing.T) {
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
}

func TestStats_FilterConservesItemsWithDrops(t *testing.T) {
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
}

func TestStats_NamesDefaultToKindAndIndex(t *testing.T) {
	p := pipeline.New(context.Background())
	src := pipeline.Generate(p, 1, 2, 3)
	sq := pipeline.FanOut(p, src, 3, identity)
	ev := pipeline.Filter(p, sq, func(int) bool { return true }, pipeline.Name("keep-all"))
	ord := pipeline.FanOutOrdered(p, ev, 2, identity)
	fm := pipeline.FlatMap(p, ord, 1, func(_ context.Context, v int, emit func(int) error) error { return emit(v) })
	require.NoError(t, pipeline.Drain(p, fm))

	stats := p.Stats()
	require.Len(t, stats, 5)
	want := []struct {
		name, kind string
		workers    int
	}{
		{"generate#1", "generate", 1},
		{"fanout#2", "fanout", 3},
		{"keep-all", "filter", 1},
		{"fanoutordered#4", "fanoutordered", 2},
		{"flatmap#5", "flatmap", 1},
	}
	for i, w := range want {
		assert.Equal(t, w.name, stats[i].Name, "stage %d", i+1)
		assert.Equal(t, w.kind, stats[i].Kind, "stage %d", i+1)
		assert.Equal(t, w.workers, stats[i].Workers, "stage %d", i+1)
	}
}

func TestStats_QueueCapIsTheOutputBufferSize(t *testing.T) {
	cases := []struct {
		name string
		opts []pipeline.Option
		so   []pipeline.StageOption
		want int
	}{
		{"default", nil, nil, pipeline.DefaultBufferSize},
		{"DefaultBuffer", []pipeline.Option{pipeline.DefaultBuffer(3)}, nil, 3},
		{"BufferSize", nil, []pipeline.StageOption{pipeline.BufferSize(5)}, 5},
		{"BufferSize overrides DefaultBuffer", []pipeline.Option{pipeline.DefaultBuffer(3)},
			[]pipeline.StageOption{pipeline.BufferSize(7)}, 7},
		{"unbuffered", nil, []pipeline.StageOption{pipeline.BufferSize(0)}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background(), tc.opts...)
			out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, identity, tc.so...)
			require.NoError(t, pipeline.Drain(p, out))
			assert.Equal(t, tc.want, p.Stats()[1].QueueCap)
			assert.Equal(t, 0, p.Stats()[1].QueueLen)
		})
	}
}

func TestStats_BusyCountsRunningCalls(t *testing.T) {
	const workers = 3
	p := pipeline.New(context.Background())
	gate := make(chan struct{})
	started := make(chan struct{}, 10)
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), workers, func(_ context.Context, v int) (int, error) {
		started <- struct{}{}
		<-gate
		return v, nil
	})
	for range workers {
		await(t, started, "a blocked call")
	}
	st := stageStats(t, p, "fanout#2")
	assert.Equal(t, workers, st.Busy, "every worker is blocked in a call")
	assert.Equal(t, workers, st.Workers)
	close(gate)
	require.NoError(t, pipeline.Drain(p, out))
	st = stageStats(t, p, "fanout#2")
	assert.Zero(t, st.Busy)
	assert.Equal(t, uint64(10), st.In)
	assert.Equal(t, uint64(10), st.Out)
}

// ---- Wait ----

func TestWait_FromManyGoroutinesReturnsTheSameResult(t *testing.T) {
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
}

func TestWait_IsRepeatable(t *testing.T) {
	p := pipeline.New(context.Background())
	require.NoError(t, pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2, identity)))
	for range 3 {
		assert.NoError(t, p.Wait())
	}
	requireDone(t, p)
}

func TestWait_StageBuiltAfterWaitFails(t *testing.T) {
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
}

// ---- Produce ----

func TestProduce_EmitReturnsErrStoppedAfterStop(t *testing.T) {
	p := pipeline.New(context.Background())
	var emitErr error
	emitted := 0
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				emitErr = err
				return err
			}
			emitted++
		}
	})
	out := pipeline.FanOut(p, src, 1, func(_ context.Context, v int) (int, error) {
		if v == 10 {
			p.Stop()
		}
		return v, nil
	})
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err, "a source returning ErrStopped ended cleanly")
	assert.ErrorIs(t, emitErr, pipeline.ErrStopped)
	assert.Len(t, got, emitted)
}

func TestProduce_WrappedErrStoppedIsACleanEnd(t *testing.T) {
	p := pipeline.New(context.Background())
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		if err := emit(1); err != nil {
			return err
		}
		return fmt.Errorf("producer done: %w", pipeline.ErrStopped)
	})
	got, err := pipeline.Collect(p, src)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, got)
}

func TestProduce_FnErrorFailsThePipeline(t *testing.T) {
	boom := errors.New("source broke")
	p := pipeline.New(context.Background())
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		if err := emit(1); err != nil {
			return err
		}
		return boom
	})
	_, err := pipeline.Collect(p, pipeline.FanOut(p, src, 2, identity))
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "produce#1", se.Stage)
	assert.Nil(t, se.Item)
	assert.Equal(t, boom, se.Err)
	assert.ErrorIs(t, err, boom)
}

func TestProduce_CtxIsDoneOnStop(t *testing.T) {
	p := pipeline.New(context.Background())
	src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		for i := range 3 {
			if err := emit(i); err != nil {
				return err
			}
		}
		<-ctx.Done() // a blocking call that gives up when ctx is done
		return ctx.Err()
	})
	for range 3 {
		await(t, src, "an item")
	}
	p.Stop()
	var rest []int
	var err error
	within(t, "Collect", func() { rest, err = pipeline.Collect(p, src) })
	require.NoError(t, err, "returning ctx's error after Stop is a clean end")
	assert.Empty(t, rest)
}

// ---- sinks ----

func TestReduce_FoldsEveryItem(t *testing.T) {
	p := pipeline.New(context.Background())
	sq := pipeline.FanOut(p, pipeline.Generate(p, ints(101)...), 4, identity)
	sum, err := pipeline.Reduce(p, sq, 0, func(a, v int) int { return a + v })
	require.NoError(t, err)
	assert.Equal(t, 5050, sum)
}

func TestDrain_ConsumesEveryItem(t *testing.T) {
	p := pipeline.New(context.Background())
	var seen atomic.Int64
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(200)...), 4, func(_ context.Context, v int) (int, error) {
		seen.Add(1)
		return v, nil
	})
	require.NoError(t, pipeline.Drain(p, out))
	assert.Equal(t, int64(200), seen.Load())
	assert.Equal(t, uint64(200), p.Stats()[1].Out)
}

func TestForEach_CallsFnOnEveryItem(t *testing.T) {
	p := pipeline.New(context.Background())
	var sum atomic.Int64
	err := pipeline.ForEach(p, pipeline.Generate(p, ints(101)...), 3, func(_ context.Context, v int) error {
		sum.Add(int64(v))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(5050), sum.Load())
	st := stageStats(t, p, "foreach#2")
	assert.Equal(t, uint64(101), st.In)
	assert.Equal(t, st.In, st.Out)
}

func TestForEach_ErrorFailsThePipeline(t *testing.T) {
	boom := errors.New("cannot store")
	p := pipeline.New(context.Background())
	err := pipeline.ForEach(p, pipeline.Generate(p, ints(20)...), 2, func(_ context.Context, v int) error {
		if v == 5 {
			return boom
		}
		return nil
	})
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "foreach#2", se.Stage)
	assert.Equal(t, 5, se.Item)
	assert.ErrorIs(t, err, boom)
}

func TestForEach_OnErrorSkipsFailedItems(t *testing.T) {
	boom := errors.New("cannot store")
	p := pipeline.New(context.Background())
	var skipped []any
	var mu sync.Mutex
	err := pipeline.ForEach(p, pipeline.Generate(p, ints(20)...), 2, func(_ context.Context, v int) error {
		if v%5 == 0 {
			return boom
		}
		return nil
	}, pipeline.OnError(func(se *pipeline.StageError) error {
		mu.Lock()
		defer mu.Unlock()
		skipped = append(skipped, se.Item)
		return nil
	}))
	require.NoError(t, err)
	assert.ElementsMatch(t, []any{0, 5, 10, 15}, skipped)
	st := stageStats(t, p, "foreach#2")
	assert.Equal(t, uint64(4), st.Errors)
	assert.Equal(t, st.In, st.Out+st.Errors)
}

func TestOnError_HandlerErrorFailsThePipeline(t *testing.T) {
	bad := errors.New("bad item")
	fatal := errors.New("core: too many bad items")
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), 1, func(_ context.Context, v int) (int, error) {
		if v == 4 {
			return 0, bad
		}
		return v, nil
	}, pipeline.OnError(func(se *pipeline.StageError) error {
		if se.Item == 4 {
			return fatal
		}
		return nil
	}))
	_, err := pipeline.Collect(p, out)
	assert.Equal(t, fatal, err)
}

// ---- Discarder ----

// coreTicket records why a stage set it aside.
type coreTicket struct {
	id     int
	reason error
}

func (c *coreTicket) Discard(reason error) { c.reason = reason }

func coreTickets(n int) []*coreTicket {
	ts := make([]*coreTicket, n)
	for i := range ts {
		ts[i] = &coreTicket{id: i}
	}
	return ts
}

func TestDiscarder_FilterTellsDroppedItemsErrFiltered(t *testing.T) {
	tickets := coreTickets(10)
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.Filter(p, pipeline.Generate(p, tickets...),
		func(c *coreTicket) bool { return c.id%2 == 0 }))
	require.NoError(t, err)
	assert.Len(t, got, 5)
	for _, c := range tickets {
		if c.id%2 == 0 {
			assert.NoError(t, c.reason, "ticket %d was kept", c.id)
		} else {
			assert.Equal(t, pipeline.ErrFiltered, c.reason, "ticket %d was dropped", c.id)
		}
	}
}

func TestDiscarder_OnErrorSkipTellsTheStageError(t *testing.T) {
	bad := errors.New("bad ticket")
	tickets := coreTickets(9)
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, tickets...), 3, func(_ context.Context, c *coreTicket) (int, error) {
		if c.id%3 == 0 {
			return 0, bad
		}
		return c.id, nil
	}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, 6)
	for _, c := range tickets {
		if c.id%3 != 0 {
			assert.NoError(t, c.reason, "ticket %d went through", c.id)
			continue
		}
		var se *pipeline.StageError
		require.ErrorAs(t, c.reason, &se, "ticket %d was skipped", c.id)
		assert.Same(t, c, se.Item)
		assert.Equal(t, "fanout#2", se.Stage)
		assert.ErrorIs(t, se, bad)
	}
}

// ---- Diagram ----

func TestDiagram_DrawsOneNodePerStageAndTheEdges(t *testing.T) {
	p := pipeline.New(context.Background())
	src := pipeline.Generate(p, 1, 2, 3)
	sq := pipeline.FanOut(p, src, 2, identity, pipeline.Name("square"))
	big := pipeline.Filter(p, sq, func(v int) bool { return v > 1 })
	require.NoError(t, pipeline.Drain(p, big))

	d := p.Diagram()
	assert.True(t, strings.HasPrefix(d, "flowchart LR\n"), d)
	nodes := regexp.MustCompile(`(?m)^\s+s\d+\[`).FindAllString(d, -1)
	assert.Len(t, nodes, 3, d)
	for _, name := range []string{"generate#1", "square", "filter#3"} {
		assert.Contains(t, d, name)
	}
	assert.Regexp(t, `(?m)^\s+s1 -->.* s2$`, d)
	assert.Regexp(t, `(?m)^\s+s2 -->.* s3$`, d)
	assert.NotRegexp(t, `(?m)^\s+s1 -->.* s3$`, d)
}
