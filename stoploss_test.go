package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Stop loses nothing: each stage kind is driven by an endless Produce source
// that records every item emit accepted, the pipeline is stopped at a random
// moment, and every emitted item must reach the sink — or be counted as
// dropped by DropOnFull or filtered by Filter.

// stopRounds is how many random Stop moments each stage kind gets.
const stopRounds = 12

// stopSource is an endless source: it emits mk(0), mk(1), … until emit
// fails, records the index of every item emit accepted, and after the k-th
// (at once if k is 0) lets a stopper goroutine call Stop after a random
// pause. Call wait once the pipeline has ended: it returns the indexes
// emitted.
func stopSource[T any](p *pipeline.Pipeline, r *rand.Rand, mk func(i int) T) (src <-chan T, wait func() []int) {
	k := r.IntN(300)
	pause := time.Duration(r.IntN(3)) * time.Duration(r.IntN(200)) * time.Microsecond
	reached := make(chan struct{})
	var once sync.Once
	signal := func() { once.Do(func() { close(reached) }) }
	if k == 0 {
		signal()
	}
	var stopper sync.WaitGroup
	stopper.Add(1)
	go func() {
		defer stopper.Done()
		<-reached
		time.Sleep(pause)
		p.Stop()
	}()
	var emitted []int
	src = pipeline.Produce(p, func(_ context.Context, emit func(T) error) error {
		defer signal() // a source that ended early must not strand the stopper
		for i := 0; ; i++ {
			if err := emit(mk(i)); err != nil {
				return err
			}
			emitted = append(emitted, i)
			if len(emitted) == k {
				signal()
			}
		}
	})
	return src, func() []int {
		stopper.Wait()
		return emitted
	}
}

// unchanged is the item a stop source makes of index i, and what a stage
// that passes items on as they are makes of item i.
func unchanged(i int) int { return i }

// stopCase builds a stage on an endless source, stops it at a random
// moment, and checks what reached the sink against what was emitted.
type stopCase struct {
	name string
	run  func(t *testing.T, r *rand.Rand)
}

// orderedStop checks a one-input, one-output stage that keeps every item
// and its order: after Stop, the sink holds exactly the emitted items, in
// order, transformed by want.
func orderedStop(kind string, build func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int, want func(int) int) func(*testing.T, *rand.Rand) {
	return func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		got, err := pipeline.Collect(p, build(p, src, r))
		require.NoError(t, err, "Stop is a clean end")
		em := emitted()
		exp := make([]int, len(em))
		for i, v := range em {
			exp[i] = want(v)
		}
		require.Equal(t, len(exp), len(got), "%s: every emitted item reaches the sink", kind)
		if len(exp) > 0 { // Stop may come before the first emit: then nil and empty both say nothing arrived
			assert.Equal(t, exp, got, "%s: in order", kind)
		}
		assertConserved(t, p.Stats())
	}
}

// unorderedStop is orderedStop for stages that may reorder.
func unorderedStop(kind string, build func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int, want func(int) []int) func(*testing.T, *rand.Rand) {
	return func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		got, err := pipeline.Collect(p, build(p, src, r))
		require.NoError(t, err, "Stop is a clean end")
		var exp []int
		for _, v := range emitted() {
			exp = append(exp, want(v)...)
		}
		require.Equal(t, len(exp), len(got), "%s: every emitted item reaches the sink", kind)
		assert.ElementsMatch(t, exp, got, kind)
		assertConserved(t, p.Stats())
	}
}

func twice(v int) int { return 2 * v }

var stopCases = []stopCase{
	{"Produce", orderedStop("produce", func(_ *pipeline.Pipeline, in <-chan int, _ *rand.Rand) <-chan int { return in }, unchanged)},
	{"FanOut", unorderedStop("fanout", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.FanOut(p, in, 1+r.IntN(8), func(_ context.Context, v int) (int, error) { jitter(v); return 2 * v, nil })
	}, func(v int) []int { return []int{2 * v} })},
	{"FanOutOrdered", orderedStop("fanoutordered", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.FanOutOrdered(p, in, 1+r.IntN(8), func(_ context.Context, v int) (int, error) { jitter(v); return 2 * v, nil })
	}, twice)},
	{"FlatMap", unorderedStop("flatmap", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.FlatMap(p, in, 1+r.IntN(8), func(_ context.Context, v int, emit func(int) error) error {
			for j := range v % 3 {
				if err := emit(v*3 + j); err != nil {
					return err
				}
			}
			return nil
		})
	}, func(v int) []int {
		var out []int
		for j := range v % 3 {
			out = append(out, v*3+j)
		}
		return out
	})},
	{"FanOutWithOptions", unorderedStop("fanout", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		var tried sync.Map
		return pipeline.FanOut(p, in, 1+r.IntN(8), func(_ context.Context, v int) (int, error) {
			if v%5 == 0 {
				return 0, errSkip // skipped by OnError
			}
			if _, again := tried.LoadOrStore(v, true); !again && v%3 == 0 {
				return 0, errSkip // fails once, Retry runs it again
			}
			return v, nil
		}, pipeline.Retry(2, func(int) time.Duration { return 0 }),
			pipeline.OnError(func(*pipeline.StageError) error { return nil }),
			pipeline.Limit(pipeline.NewLimiter(1+r.IntN(3))),
			pipeline.Timeout(time.Minute))
	}, func(v int) []int {
		if v%5 == 0 {
			return nil
		}
		return []int{v}
	})},
	{"Buffer", orderedStop("buffer", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Buffer(p, in, 1+r.IntN(32))
	}, unchanged)},
	{"Throttle", orderedStop("throttle", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Throttle(p, in, time.Duration(1+r.IntN(10))*time.Microsecond, 1+r.IntN(64))
	}, unchanged)},
	{"BatchUnbatch", orderedStop("unbatch", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Unbatch(p, pipeline.Batch(p, in, 1+r.IntN(16), time.Duration(r.IntN(3))*time.Millisecond))
	}, unchanged)},
	{"Batch", func(t *testing.T, r *rand.Rand) {
		size := 1 + r.IntN(16)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		// A long maxWait: only size, the input's end and Stop send a batch.
		batches, err := pipeline.Collect(p, pipeline.Batch(p, src, size, time.Duration(r.IntN(2))*time.Hour))
		require.NoError(t, err)
		var flat []int
		for _, b := range batches {
			require.NotEmpty(t, b)
			require.LessOrEqual(t, len(b), size)
			flat = append(flat, b...)
		}
		em := emitted()
		require.Equal(t, len(em), len(flat), "Batch flushes its partial batch on Stop")
		assert.Equal(t, em, flat)
	}},
	{"Unbatch", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, func(i int) []int { return slices.Repeat([]int{i}, i%4) })
		got, err := pipeline.Collect(p, pipeline.Unbatch(p, src))
		require.NoError(t, err)
		var want []int
		for _, i := range emitted() {
			want = append(want, slices.Repeat([]int{i}, i%4)...)
		}
		require.Equal(t, len(want), len(got), "every item of every emitted slice reaches the sink")
		assert.Equal(t, want, got)
	}},
	{"Filter", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		got, err := pipeline.Collect(p, pipeline.Filter(p, src, func(v int) bool { return v%3 != 0 }))
		require.NoError(t, err)
		em := emitted()
		want := slices.DeleteFunc(slices.Clone(em), func(v int) bool { return v%3 == 0 })
		if len(want) == 0 {
			want = nil // Collect of nothing is nil; em may be [0], which filters to empty
		}
		require.Equal(t, len(want), len(got), "every kept item reaches the sink")
		assert.Equal(t, want, got)
		f := stageStats(t, p, "filter#2")
		assert.EqualValues(t, len(em)-len(want), f.Dropped, "every other item is counted as filtered")
	}},
	{"DropOnFull", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		var got []int
		for v := range pipeline.All(p, pipeline.DropOnFull(p, src, 1+r.IntN(8))) {
			if v%7 == 0 {
				time.Sleep(5 * time.Microsecond) // slow enough for the queue to fill
			}
			got = append(got, v)
		}
		require.NoError(t, p.Wait())
		em := emitted()
		d := stageStats(t, p, "droponfull#2")
		assert.EqualValues(t, len(em), uint64(len(got))+d.Dropped, "every emitted item is delivered or counted as dropped")
		assert.True(t, slices.IsSorted(got) && len(slices.Compact(slices.Clone(got))) == len(got), "delivered in order, once each")
	}},
	{"Merge", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		k := 1 + r.IntN(3)
		ins := make([]<-chan int, k)
		waits := make([]func() []int, k)
		for i := range ins {
			ins[i], waits[i] = stopSource(p, r, func(v int) int { return i<<20 | v })
		}
		got, err := pipeline.Collect(p, pipeline.Merge(p, ins...))
		require.NoError(t, err)
		var want []int
		for i, w := range waits {
			for _, v := range w() {
				want = append(want, i<<20|v)
			}
		}
		require.Equal(t, len(want), len(got), "every item of every input reaches the sink")
		assert.ElementsMatch(t, want, got)
	}},
	{"Tee", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		got := readAll(pipeline.Tee(p, src, 1+r.IntN(4)))
		require.NoError(t, p.Wait())
		em := emitted()
		if len(em) == 0 {
			em = nil
		}
		for i, g := range got {
			assert.Equal(t, em, g, "output %d gets every emitted item in order", i)
		}
	}},
	{"Partition", func(t *testing.T, r *rand.Rand) {
		n := 1 + r.IntN(5)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		route := randomRoute(r.Uint64())
		got := readAll(pipeline.Partition(p, src, n, route))
		require.NoError(t, p.Wait())
		want := make([][]int, n)
		for _, v := range emitted() {
			i := wrap(route(v), n)
			want[i] = append(want[i], v)
		}
		assert.Equal(t, want, got, "every emitted item on its output, in order")
	}},
	{"ForEach", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		var mu sync.Mutex
		var got []int
		require.NoError(t, pipeline.ForEach(p, src, 1+r.IntN(6), func(_ context.Context, v int) error {
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
			return nil
		}))
		assert.ElementsMatch(t, emitted(), got, "ForEach handles every emitted item")
	}},
	{"Reduce", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		sum, err := pipeline.Reduce(p, src, 0, func(acc, v int) int { return acc + v + 1 })
		require.NoError(t, err)
		want := 0
		for _, v := range emitted() {
			want += v + 1
		}
		assert.Equal(t, want, sum, "Reduce folds every emitted item")
	}},
	{"Drain", func(t *testing.T, r *rand.Rand) {
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src, emitted := stopSource(p, r, unchanged)
		var seen atomic.Int64
		counted := pipeline.FanOut(p, src, 1, func(_ context.Context, v int) (int, error) { seen.Add(1); return v, nil })
		require.NoError(t, pipeline.Drain(p, counted))
		assert.EqualValues(t, len(emitted()), seen.Load(), "every emitted item reaches Drain's input")
		assertConserved(t, p.Stats())
	}},
}

func TestStop_LosesNothingInAnyStage(t *testing.T) {
	r := newRand(t)
	for _, c := range stopCases {
		t.Run(c.name, func(t *testing.T) {
			for i := range stopRounds {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					guard(t, func() { c.run(t, r) })
				})
			}
		})
	}
}

// The sources that are not Produce: after Stop, what they emitted (a prefix
// of their items, per Stats) reaches the sink.
func TestStop_SourcesDeliverEveryItemTheyEmitted(t *testing.T) {
	// left reports how many items the source has not taken (FromChan leaves
	// them in its channel).
	sources := map[string]func(p *pipeline.Pipeline, items []int) (out <-chan int, left func() int){
		"generate": func(p *pipeline.Pipeline, items []int) (<-chan int, func() int) {
			return pipeline.Generate(p, items...), nil
		},
		"fromseq": func(p *pipeline.Pipeline, items []int) (<-chan int, func() int) {
			return pipeline.FromSeq(p, slices.Values(items)), nil
		},
		"fromchan": func(p *pipeline.Pipeline, items []int) (<-chan int, func() int) {
			ch := make(chan int, len(items))
			for _, v := range items {
				ch <- v
			}
			close(ch)
			return pipeline.FromChan(p, ch), func() int { return len(ch) }
		},
	}
	r := newRand(t)
	for kind, build := range sources {
		t.Run(kind, func(t *testing.T) {
			for range stopRounds {
				n, k := 1+r.IntN(500), r.IntN(100)
				p := pipeline.New(context.Background(), randomBuffer(r)...)
				src, left := build(p, ints(n))
				var got []int
				for v := range pipeline.All(p, src) {
					if len(got) == k {
						p.Stop()
					}
					got = append(got, v)
				}
				require.NoError(t, p.Wait())
				s := stageStats(t, p, kind+"#1")
				require.EqualValues(t, s.Out, len(got), "the sink gets every item the source emitted")
				assert.Equal(t, ints(len(got)), got, "a prefix of the items, in order")
				assert.GreaterOrEqual(t, len(got), min(n, k), "everything before Stop arrived")
				if left != nil {
					assert.Equal(t, n, len(got)+left(), "every value is delivered or still in the channel")
				}
			}
		})
	}
}
