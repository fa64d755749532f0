package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Property tests: for random inputs, worker counts and buffer sizes, every
// stage conserves items (In = Out + Dropped + Errors, and the sink sees exactly
// the last stage's Out), keeps the order it promises, and never runs more
// calls than its bound. Each test logs its seed; set PIPELINE_SEED to replay
// a failure.

// propertyCases is the number of random cases each property test tries.
const propertyCases = 30

func TestProperty_FanOut_ConservesEveryItem(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, workers := r.IntN(300), 1+r.IntN(16)
		salt := r.Uint64()
		skip := func(v int) bool { return hash(uint64(v), salt)%5 == 0 }
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(n)...), workers, func(_ context.Context, v int) (int, error) {
			jitter(v)
			if skip(v) {
				return 0, errSkip
			}
			return 2 * v, nil
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)

		var want []int
		for v := range n {
			if !skip(v) {
				want = append(want, 2*v)
			}
		}
		assert.ElementsMatch(t, want, got, "n=%d workers=%d", n, workers)
		st := p.Stats()
		assertConserved(t, st)
		fo := stageStats(t, p, "fanout#2")
		assert.EqualValues(t, n, fo.In)
		assert.EqualValues(t, n-len(want), fo.Errors)
		assert.EqualValues(t, len(got), fo.Out, "the sink sees exactly Out of the last stage")
	}
}

func TestProperty_FanOutOrdered_KeepsInputOrder(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, workers := r.IntN(300), 1+r.IntN(16)
		salt := r.Uint64()
		skip := func(v int) bool { return hash(uint64(v), salt)%7 == 0 }
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(n)...), workers, func(_ context.Context, v int) (int, error) {
			if hash(uint64(v), salt)%11 == 0 {
				time.Sleep(time.Duration(hash(uint64(v), 3)%200) * time.Microsecond)
			}
			jitter(v)
			if skip(v) {
				return 0, errSkip
			}
			return v, nil
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)

		var want []int
		for v := range n {
			if !skip(v) {
				want = append(want, v)
			}
		}
		assert.Equal(t, want, got, "n=%d workers=%d: input order, skipped items leave no gap", n, workers)
		st := p.Stats()
		assertConserved(t, st)
		assert.EqualValues(t, len(got), stageStats(t, p, "fanoutordered#2").Out)
	}
}

func TestProperty_FlatMap_ConservesEmittedItems(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, workers := r.IntN(200), 1+r.IntN(8)
		salt := r.Uint64()
		copies := func(v int) int { return int(hash(uint64(v), salt) % 4) }
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		out := pipeline.FlatMap(p, pipeline.Generate(p, ints(n)...), workers, func(_ context.Context, v int, emit func(int) error) error {
			for j := range copies(v) {
				jitter(v + j)
				if err := emit(v*10 + j); err != nil {
					return err
				}
			}
			return nil
		})
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)

		var want []int
		for v := range n {
			for j := range copies(v) {
				want = append(want, v*10+j)
			}
		}
		assert.ElementsMatch(t, want, got)
		last := map[int]int{} // per input item: the last copy seen
		for _, x := range got {
			v, j := x/10, x%10
			prev, seen := last[v]
			assert.Truef(t, !seen || prev < j, "results of one call keep their order: %d after %d", x, v*10+prev)
			last[v] = j
		}
		fm := stageStats(t, p, "flatmap#2")
		assert.EqualValues(t, n, fm.In)
		assert.EqualValues(t, len(want), fm.Out)
		assert.EqualValues(t, len(got), fm.Out)
	}
}

func TestProperty_Filter_KeepsOrderAndCountsDrops(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, salt := r.IntN(500), r.Uint64()
		keep := func(v int) bool { return hash(uint64(v), salt)%3 != 0 }
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		got, err := pipeline.Collect(p, pipeline.Filter(p, pipeline.Generate(p, ints(n)...), keep))
		require.NoError(t, err)

		want := slices.DeleteFunc(ints(n), func(v int) bool { return !keep(v) })
		if len(want) == 0 {
			want = nil
		}
		assert.Equal(t, want, got)
		st := p.Stats()
		assertConserved(t, st)
		f := stageStats(t, p, "filter#2")
		assert.EqualValues(t, n-len(want), f.Dropped)
		assert.EqualValues(t, len(got), f.Out)
	}
}

// assertKeepsOrder drives one order-keeping, item-preserving stage with random
// input and a reader that pauses at random, and checks it delivers every item
// in input order.
func assertKeepsOrder(t *testing.T, stage string, build func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int) {
	r := newRand(t)
	for range propertyCases {
		n := r.IntN(400)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		out := build(p, pipeline.Generate(p, ints(n)...), r)
		var got []int
		for v := range pipeline.All(p, out) {
			jitter(v)
			got = append(got, v)
		}
		require.NoError(t, p.Wait())
		want := ints(n)
		if n == 0 {
			want = nil
		}
		assert.Equal(t, want, got, "%s delivers every item in input order", stage)
		st := p.Stats()
		assertConserved(t, st)
		s := stageStats(t, p, stage)
		assert.EqualValues(t, n, s.In)
		assert.EqualValues(t, len(got), s.Out)
	}
}

func TestProperty_Buffer_KeepsOrder(t *testing.T) {
	assertKeepsOrder(t, "buffer#2", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Buffer(p, in, 1+r.IntN(64))
	})
}

func TestProperty_Throttle_KeepsOrder(t *testing.T) {
	assertKeepsOrder(t, "throttle#2", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Throttle(p, in, time.Duration(1+r.IntN(20))*time.Microsecond, 1+r.IntN(64))
	})
}

func TestProperty_BatchThenUnbatch_KeepsOrder(t *testing.T) {
	assertKeepsOrder(t, "unbatch#3", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Unbatch(p, pipeline.Batch(p, in, 1+r.IntN(20), time.Duration(r.IntN(3))*50*time.Microsecond))
	})
}

func TestProperty_DropOnFull_ConservesItemsAndKeepsOrder(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n := r.IntN(500)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		out := pipeline.DropOnFull(p, pipeline.Generate(p, ints(n)...), 1+r.IntN(8))
		var got []int
		for v := range pipeline.All(p, out) {
			if v%17 == 0 {
				time.Sleep(10 * time.Microsecond) // a slow reader makes the queue fill
			}
			got = append(got, v)
		}
		require.NoError(t, p.Wait(), "drops are deliberate, not a failure")
		assert.True(t, slices.IsSorted(got), "DropOnFull keeps input order: %v", got)
		assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "no item is sent twice")
		st := p.Stats()
		assertConserved(t, st)
		d := stageStats(t, p, "droponfull#2")
		assert.EqualValues(t, n, d.In)
		assert.EqualValues(t, len(got), d.Out, "the sink sees exactly Out")
		assert.EqualValues(t, n-len(got), d.Dropped, "every item not delivered is counted as dropped")
	}
}

func TestProperty_Batch_SendsInputInOrderInBoundedBatches(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, size := r.IntN(300), 1+r.IntN(32)
		maxWait := time.Duration(r.IntN(4)) * 30 * time.Microsecond
		pauses := r.IntN(10)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			for v := range n {
				if pauses > 0 && v%(pauses+3) == 0 {
					time.Sleep(time.Duration(pauses) * 20 * time.Microsecond)
				}
				if err := emit(v); err != nil {
					return err
				}
			}
			return nil
		})
		batches, err := pipeline.Collect(p, pipeline.Batch(p, src, size, maxWait))
		require.NoError(t, err)

		var flat []int
		for i, b := range batches {
			require.NotEmpty(t, b, "no batch is empty")
			require.LessOrEqual(t, len(b), size)
			if maxWait <= 0 && i < len(batches)-1 {
				require.Len(t, b, size, "by size only, every batch but the last is full")
			}
			flat = append(flat, b...)
		}
		want := ints(n)
		if n == 0 {
			want = nil
		}
		assert.Equal(t, want, flat, "n=%d size=%d maxWait=%v", n, size, maxWait)
		st := p.Stats()
		assertConserved(t, st)
		assert.EqualValues(t, n, stageStats(t, p, "batch#2").Out, "Batch counts items, not batches")
	}
}

func TestProperty_Unbatch_SendsEverySliceInOrder(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		var in [][]int
		var want []int
		next := 0
		for range r.IntN(60) {
			b := make([]int, r.IntN(6)) // empty slices too
			for i := range b {
				b[i] = next
				next++
			}
			in = append(in, b)
			want = append(want, b...)
		}
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		got, err := pipeline.Collect(p, pipeline.Unbatch(p, pipeline.Generate(p, in...)))
		require.NoError(t, err)
		assert.Equal(t, want, got)
		st := p.Stats()
		assertConserved(t, st)
		u := stageStats(t, p, "unbatch#2")
		assert.EqualValues(t, len(want), u.In)
		assert.EqualValues(t, len(got), u.Out)
	}
}

func TestProperty_Merge_KeepsOrderOfEachInput(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		k := r.IntN(6)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		ins := make([]<-chan int, k)
		total := 0
		for i := range ins {
			n := r.IntN(200)
			total += n
			vals := make([]int, n)
			for j := range vals {
				vals[j] = i*1000 + j
			}
			ins[i] = pipeline.Generate(p, vals...)
		}
		got, err := pipeline.Collect(p, pipeline.Merge(p, ins...))
		require.NoError(t, err)
		require.Len(t, got, total, "every item of every input arrives")
		next := make([]int, k)
		for _, v := range got {
			i, j := v/1000, v%1000
			require.Equalf(t, next[i], j, "input %d out of order", i)
			next[i]++
		}
		st := p.Stats()
		assertConserved(t, st)
		m := stageStats(t, p, fmt.Sprintf("merge#%d", k+1)) // after the k Generate stages
		assert.EqualValues(t, total, m.In)
		assert.EqualValues(t, total, m.Out)
	}
}

func TestProperty_Tee_SendsEveryItemToEveryOutputInOrder(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, k := r.IntN(300), 1+r.IntN(5)
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		outs := pipeline.Tee(p, pipeline.Generate(p, ints(n)...), k)
		require.Len(t, outs, k)
		got := make([][]int, k)
		var wg sync.WaitGroup
		for i, o := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range o {
					jitter(v + i)
					got[i] = append(got[i], v)
				}
			}()
		}
		wg.Wait()
		require.NoError(t, p.Wait())
		want := ints(n)
		if n == 0 {
			want = nil
		}
		for i := range got {
			assert.Equal(t, want, got[i], "output %d of %d", i, k)
		}
		st := p.Stats()
		assertConserved(t, st)
		assert.EqualValues(t, n, stageStats(t, p, "tee#2").Out)
	}
}

func TestProperty_Partition_SendsEveryItemToItsOutputInOrder(t *testing.T) {
	r := newRand(t)
	for range propertyCases {
		n, k := r.IntN(300), 1+r.IntN(7)
		route := randomRoute(r.Uint64())
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		outs := pipeline.Partition(p, pipeline.Generate(p, ints(n)...), k, route)
		require.Len(t, outs, k)
		got := readAll(outs)
		require.NoError(t, p.Wait())
		want := make([][]int, k)
		for v := range n {
			i := wrap(route(v), k)
			want[i] = append(want[i], v)
		}
		assert.Equal(t, want, got, "each item on output route(item) mod %d, in input order", k)
		st := p.Stats()
		assertConserved(t, st)
		assert.EqualValues(t, n, stageStats(t, p, "partition#2").Out)
	}
}

func TestProperty_Sources_EmitEveryItemInOrder(t *testing.T) {
	sources := map[string]func(p *pipeline.Pipeline, items []int) <-chan int{
		"generate": func(p *pipeline.Pipeline, items []int) <-chan int { return pipeline.Generate(p, items...) },
		"fromseq":  func(p *pipeline.Pipeline, items []int) <-chan int { return pipeline.FromSeq(p, slices.Values(items)) },
		"fromchan": func(p *pipeline.Pipeline, items []int) <-chan int {
			ch := make(chan int, len(items))
			for _, v := range items {
				ch <- v
			}
			close(ch)
			return pipeline.FromChan(p, ch)
		},
		"produce": func(p *pipeline.Pipeline, items []int) <-chan int {
			return pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
				for _, v := range items {
					if err := emit(v); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	r := newRand(t)
	for kind, build := range sources {
		t.Run(kind, func(t *testing.T) {
			for range propertyCases {
				n := r.IntN(300)
				p := pipeline.New(context.Background(), randomBuffer(r)...)
				got, err := pipeline.Collect(p, build(p, ints(n)))
				require.NoError(t, err)
				assert.Equal(t, n, len(got))
				assert.True(t, slices.IsSorted(got))
				s := stageStats(t, p, kind+"#1")
				assert.EqualValues(t, n, s.Out)
				assert.Equal(t, s.In, s.Out, "a source's In is its Out")
			}
		})
	}
}

func TestProperty_Sinks_SeeExactlyOutOfLastStage(t *testing.T) {
	type sinkFn func(p *pipeline.Pipeline, in <-chan int) (seen int, err error)
	sinks := map[string]sinkFn{
		"collect": func(p *pipeline.Pipeline, in <-chan int) (int, error) {
			got, err := pipeline.Collect(p, in)
			return len(got), err
		},
		"reduce": func(p *pipeline.Pipeline, in <-chan int) (int, error) {
			return pipeline.Reduce(p, in, 0, func(acc, _ int) int { return acc + 1 })
		},
		"foreach": func(p *pipeline.Pipeline, in <-chan int) (int, error) {
			var n atomic.Int64
			err := pipeline.ForEach(p, in, 3, func(context.Context, int) error { n.Add(1); return nil })
			return int(n.Load()), err
		},
		"all": func(p *pipeline.Pipeline, in <-chan int) (int, error) {
			n := 0
			for range pipeline.All(p, in) {
				n++
			}
			return n, p.Wait()
		},
	}
	r := newRand(t)
	for name, sink := range sinks {
		t.Run(name, func(t *testing.T) {
			for range propertyCases {
				n, salt := r.IntN(300), r.Uint64()
				p := pipeline.New(context.Background(), randomBuffer(r)...)
				last := pipeline.Filter(p, pipeline.Generate(p, ints(n)...), func(v int) bool {
					return hash(uint64(v), salt)%2 == 0
				})
				seen, err := sink(p, last)
				require.NoError(t, err)
				st := p.Stats()
				assertConserved(t, st)
				assert.EqualValues(t, stageStats(t, p, "filter#2").Out, seen)
			}
		})
	}
}

// workerStage builds a stage of some kind whose calls go through call.
type workerStage func(p *pipeline.Pipeline, in <-chan int, workers int, call func(int), opts ...pipeline.StageOption) <-chan int

var workerStages = map[string]workerStage{
	"fanout": func(p *pipeline.Pipeline, in <-chan int, workers int, call func(int), opts ...pipeline.StageOption) <-chan int {
		return pipeline.FanOut(p, in, workers, func(_ context.Context, v int) (int, error) { call(v); return v, nil }, opts...)
	},
	"fanoutordered": func(p *pipeline.Pipeline, in <-chan int, workers int, call func(int), opts ...pipeline.StageOption) <-chan int {
		return pipeline.FanOutOrdered(p, in, workers, func(_ context.Context, v int) (int, error) { call(v); return v, nil }, opts...)
	},
	"flatmap": func(p *pipeline.Pipeline, in <-chan int, workers int, call func(int), opts ...pipeline.StageOption) <-chan int {
		return pipeline.FlatMap(p, in, workers, func(_ context.Context, v int, emit func(int) error) error {
			call(v)
			return emit(v)
		}, opts...)
	},
	"foreach": func(p *pipeline.Pipeline, in <-chan int, workers int, call func(int), opts ...pipeline.StageOption) <-chan int {
		// ForEach is a sink: run it to the end and hand on nothing.
		_ = pipeline.ForEach(p, in, workers, func(_ context.Context, v int) error { call(v); return nil }, opts...)
		return nil
	},
}

func TestProperty_WorkerStages_RunAtMostWorkersCalls(t *testing.T) {
	r := newRand(t)
	for kind, build := range workerStages {
		t.Run(kind, func(t *testing.T) {
			for range propertyCases / 2 {
				n, workers := r.IntN(200), 1+r.IntN(8)
				var g gauge
				p := pipeline.New(context.Background(), randomBuffer(r)...)
				out := build(p, pipeline.Generate(p, ints(n)...), workers, func(v int) {
					g.enter()
					defer g.leave()
					jitter(v)
					if v%13 == 0 {
						time.Sleep(20 * time.Microsecond)
					}
				})
				var err error
				if out != nil {
					err = pipeline.Drain(p, out)
				} else {
					err = p.Wait()
				}
				require.NoError(t, err)
				assert.LessOrEqualf(t, g.peak.Load(), int64(workers), "%s with %d workers", kind, workers)
				assertConserved(t, p.Stats())
			}
		})
	}
}

func TestProperty_Limiter_BoundsCallsAcrossStagesAndPipelines(t *testing.T) {
	r := newRand(t)
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range workerStages {
			if k != "foreach" && !yield(k) {
				return
			}
		}
	})
	for range propertyCases / 2 {
		slots := 1 + r.IntN(4)
		lim := pipeline.NewLimiter(slots)
		var all gauge
		var wg sync.WaitGroup
		pipes := 1 + r.IntN(2) // one pipeline, or two sharing the limiter
		for range pipes {
			p := pipeline.New(context.Background(), randomBuffer(r)...)
			ch := pipeline.Generate(p, ints(r.IntN(150))...)
			gauges := make([]*gauge, 1+r.IntN(3))
			workers := make([]int, len(gauges))
			for i := range gauges {
				gauges[i], workers[i] = &gauge{}, 1+r.IntN(6)
				g := gauges[i]
				ch = workerStages[kinds[r.IntN(len(kinds))]](p, ch, workers[i], func(v int) {
					g.enter()
					all.enter()
					if in := lim.InUse(); in > slots {
						t.Errorf("limiter holds %d slots of %d", in, slots)
					}
					jitter(v)
					all.leave()
					g.leave()
				}, pipeline.Limit(lim))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, pipeline.Drain(p, ch))
				for i, g := range gauges {
					assert.LessOrEqualf(t, g.peak.Load(), int64(workers[i]), "stage %d with %d workers", i, workers[i])
				}
				assertConserved(t, p.Stats())
			}()
		}
		wg.Wait()
		assert.LessOrEqualf(t, all.peak.Load(), int64(slots), "%d pipelines sharing a limiter of %d slots", pipes, slots)
		assert.Zero(t, lim.InUse(), "every slot is given back")
	}
}

func TestProperty_Weighted_HoldsAtMostTheLimitersSlots(t *testing.T) {
	r := newRand(t)
	for range propertyCases / 2 {
		slots := 1 + r.IntN(8)
		lim := pipeline.NewLimiter(slots)
		var held atomic.Int64
		var peak gauge
		weight := func(v int) int { return 1 + v%slots } // 1..slots: every item fits
		fn := pipeline.Weighted(lim, weight, func(_ context.Context, v int) (int, error) {
			h := held.Add(int64(weight(v)))
			peak.enter()
			if h > int64(slots) {
				t.Errorf("weighted calls hold %d slots of %d", h, slots)
			}
			jitter(v)
			peak.leave()
			held.Add(-int64(weight(v)))
			return v, nil
		})
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		n := r.IntN(150)
		got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, ints(n)...), 1+r.IntN(8), fn))
		require.NoError(t, err)
		assert.Len(t, got, n)
		assert.LessOrEqual(t, peak.peak.Load(), int64(slots))
		assert.Zero(t, lim.InUse())
	}
}

// Bounded memory: behind one slow item, FanOutOrdered holds at most its
// window of finished results (4×workers, at least 16) plus one result in each
// other worker, then stops taking items until the slow one is done.
func TestProperty_FanOutOrdered_HoldsAtMostItsWindowBehindASlowItem(t *testing.T) {
	r := newRand(t)
	for range propertyCases / 3 {
		workers := 2 + r.IntN(7) // one worker is held by the slow item
		window := max(4*workers, 16)
		held := window - 1 + workers - 1 // results 1..window-1, and one per other worker
		n := 3 * (window + workers)
		var started, finished atomic.Int64
		var released atomic.Bool
		release := make(chan struct{})
		slowStarted := make(chan struct{})
		p := pipeline.New(context.Background(), randomBuffer(r)...)
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(n)...), workers, func(_ context.Context, v int) (int, error) {
			if s := started.Add(1); s > int64(held+1) && !released.Load() {
				t.Errorf("call %d started behind the slow item: at most %d may (window %d, %d workers)", s, held+1, window, workers)
			}
			if v == 0 {
				close(slowStarted)
				<-release // the slow item
				return v, nil
			}
			jitter(v)
			if finished.Add(1) == int64(held) {
				// Every other worker now waits for room: give them the chance
				// to start another call (which they must not), then let the
				// slow item finish. The worker that took item 0 may not have
				// called fn yet on a loaded machine: wait for it first.
				<-slowStarted
				for range 200 {
					runtime.Gosched()
				}
				if s := started.Load(); s != int64(held+1) {
					t.Errorf("%d calls started behind the slow item, want exactly %d (window %d, %d workers)", s, held+1, window, workers)
				}
				released.Store(true)
				close(release)
			}
			return v, nil
		})
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, ints(n), got)
	}
}
