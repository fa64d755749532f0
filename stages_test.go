package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
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

// ---- Stop and Shutdown ----

// ---- invalid arguments ----

func TestInvalidArgument_FailsWithNamedStageAndArgument(t *testing.T) {
	bg := context.Background()
	good := func(p *pipeline.Pipeline) <-chan int { return pipeline.Generate(p, 1, 2, 3) }
	id := identity
	flat := func(_ context.Context, v int, emit func(int) error) error { return emit(v) }
	each := func(context.Context, int) error { return nil }
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
		{"FanOut workers 0", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, good(p), 0, id)) },
			[]string{"fanout#2", "workers"}},
		{"FanOut workers negative", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, good(p), -3, id)) },
			[]string{"fanout#2", "workers"}},
		{"FanOut nil fn", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, good(p), 2, nilFn)) },
			[]string{"fanout#2", "fn"}},
		{"FanOut nil in", nil, func(p *pipeline.Pipeline) result { return stage(pipeline.FanOut(p, nilIn, 2, id)) },
			[]string{"fanout#1", "input"}},
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

// ---- Wait ----

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

// ---- Discarder ----

// ---- Diagram ----
