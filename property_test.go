package pipeline_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
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

// relCases is the number of random cases each property test tries.
const relCases = 30

// relRand returns a generator seeded from PIPELINE_SEED or the clock, and logs
// the seed so that a failure can be replayed.
func relRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PIPELINE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "PIPELINE_SEED must be an unsigned integer")
		seed = v
	}
	t.Logf("seed %d (replay with PIPELINE_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// relGauge measures how many calls run at once, and the peak.
type relGauge struct{ cur, peak atomic.Int64 }

func (g *relGauge) enter() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *relGauge) exit() { g.cur.Add(-1) }

// relJitter yields the processor a random number of times (0 to 3), so that
// worker calls finish in a scrambled order without sleeping.
func relJitter(v int) {
	for range relHash(uint64(v), 0x51) % 4 {
		runtime.Gosched()
	}
}

// relHash mixes v with salt (splitmix64), for deterministic pseudo-random
// decisions about an item.
func relHash(v, salt uint64) uint64 {
	z := v + salt + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// relInts returns 0..n-1.
func relInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// relBuf is a random output buffer option for a new pipeline: unbuffered,
// tiny or the default.
func relBuf(r *rand.Rand) []pipeline.Option {
	switch r.IntN(3) {
	case 0:
		return []pipeline.Option{pipeline.DefaultBuffer(0)}
	case 1:
		return []pipeline.Option{pipeline.DefaultBuffer(1 + r.IntN(4))}
	}
	return nil
}

// relAssertConserved checks In = Out + Dropped + Errors for every stage that
// passes each item on at most once, and that nothing is busy after Wait.
func relAssertConserved(t testing.TB, stats []pipeline.StageStats) {
	t.Helper()
	for _, s := range stats {
		if s.Kind == "flatmap" {
			continue
		}
		assert.Equalf(t, s.In, s.Out+s.Dropped+s.Errors, "stage %s (%s): In = Out + Dropped + Errors: %+v", s.Name, s.Kind, s)
	}
}

// relStage returns the stats of the only stage of the given kind.
func relStage(t testing.TB, stats []pipeline.StageStats, kind string) pipeline.StageStats {
	t.Helper()
	var found []pipeline.StageStats
	for _, s := range stats {
		if s.Kind == kind {
			found = append(found, s)
		}
	}
	require.Lenf(t, found, 1, "stages of kind %s in %+v", kind, stats)
	return found[0]
}

var errRelSkip = errors.New("rel: skipped item")

func TestProperty_FanOut_ConservesEveryItem(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, workers := r.IntN(300), 1+r.IntN(16)
		salt := r.Uint64()
		skip := func(v int) bool { return relHash(uint64(v), salt)%5 == 0 }
		p := pipeline.New(context.Background(), relBuf(r)...)
		out := pipeline.FanOut(p, pipeline.Generate(p, relInts(n)...), workers, func(_ context.Context, v int) (int, error) {
			relJitter(v)
			if skip(v) {
				return 0, errRelSkip
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
		relAssertConserved(t, st)
		fo := relStage(t, st, "fanout")
		assert.EqualValues(t, n, fo.In)
		assert.EqualValues(t, n-len(want), fo.Errors)
		assert.EqualValues(t, len(got), fo.Out, "the sink sees exactly Out of the last stage")
	}
}

func TestProperty_FanOutOrdered_KeepsInputOrder(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, workers := r.IntN(300), 1+r.IntN(16)
		salt := r.Uint64()
		skip := func(v int) bool { return relHash(uint64(v), salt)%7 == 0 }
		p := pipeline.New(context.Background(), relBuf(r)...)
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, relInts(n)...), workers, func(_ context.Context, v int) (int, error) {
			if relHash(uint64(v), salt)%11 == 0 {
				time.Sleep(time.Duration(relHash(uint64(v), 3)%200) * time.Microsecond)
			}
			relJitter(v)
			if skip(v) {
				return 0, errRelSkip
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
		relAssertConserved(t, st)
		assert.EqualValues(t, len(got), relStage(t, st, "fanoutordered").Out)
	}
}

func TestProperty_FlatMap_ConservesEmittedItems(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, workers := r.IntN(200), 1+r.IntN(8)
		salt := r.Uint64()
		copies := func(v int) int { return int(relHash(uint64(v), salt) % 4) }
		p := pipeline.New(context.Background(), relBuf(r)...)
		out := pipeline.FlatMap(p, pipeline.Generate(p, relInts(n)...), workers, func(_ context.Context, v int, emit func(int) error) error {
			for j := range copies(v) {
				relJitter(v + j)
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
		fm := relStage(t, p.Stats(), "flatmap")
		assert.EqualValues(t, n, fm.In)
		assert.EqualValues(t, len(want), fm.Out)
		assert.EqualValues(t, len(got), fm.Out)
	}
}

func TestProperty_Filter_KeepsOrderAndCountsDrops(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, salt := r.IntN(500), r.Uint64()
		keep := func(v int) bool { return relHash(uint64(v), salt)%3 != 0 }
		p := pipeline.New(context.Background(), relBuf(r)...)
		got, err := pipeline.Collect(p, pipeline.Filter(p, pipeline.Generate(p, relInts(n)...), keep))
		require.NoError(t, err)

		want := slices.DeleteFunc(relInts(n), func(v int) bool { return !keep(v) })
		if len(want) == 0 {
			want = nil
		}
		assert.Equal(t, want, got)
		st := p.Stats()
		relAssertConserved(t, st)
		f := relStage(t, st, "filter")
		assert.EqualValues(t, n-len(want), f.Dropped)
		assert.EqualValues(t, len(got), f.Out)
	}
}

// relOrderCase drives one order-keeping, item-preserving stage with random
// input and a reader that pauses at random, and checks it delivers every item
// in input order.
func relOrderCase(t *testing.T, kind string, build func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int) {
	r := relRand(t)
	for range relCases {
		n := r.IntN(400)
		p := pipeline.New(context.Background(), relBuf(r)...)
		out := build(p, pipeline.Generate(p, relInts(n)...), r)
		var got []int
		for v := range pipeline.All(p, out) {
			relJitter(v)
			got = append(got, v)
		}
		require.NoError(t, p.Wait())
		want := relInts(n)
		if n == 0 {
			want = nil
		}
		assert.Equal(t, want, got, "%s delivers every item in input order", kind)
		st := p.Stats()
		relAssertConserved(t, st)
		s := relStage(t, st, kind)
		assert.EqualValues(t, n, s.In)
		assert.EqualValues(t, len(got), s.Out)
	}
}

func TestProperty_Buffer_KeepsOrder(t *testing.T) {
	relOrderCase(t, "buffer", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Buffer(p, in, 1+r.IntN(64))
	})
}

func TestProperty_Throttle_KeepsOrder(t *testing.T) {
	relOrderCase(t, "throttle", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Throttle(p, in, time.Duration(1+r.IntN(20))*time.Microsecond, 1+r.IntN(64))
	})
}

func TestProperty_BatchThenUnbatch_KeepsOrder(t *testing.T) {
	relOrderCase(t, "unbatch", func(p *pipeline.Pipeline, in <-chan int, r *rand.Rand) <-chan int {
		return pipeline.Unbatch(p, pipeline.Batch(p, in, 1+r.IntN(20), time.Duration(r.IntN(3))*50*time.Microsecond))
	})
}

func TestProperty_DropOnFull_ConservesItemsAndKeepsOrder(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n := r.IntN(500)
		p := pipeline.New(context.Background(), relBuf(r)...)
		out := pipeline.DropOnFull(p, pipeline.Generate(p, relInts(n)...), 1+r.IntN(8))
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
		relAssertConserved(t, st)
		d := relStage(t, st, "droponfull")
		assert.EqualValues(t, n, d.In)
		assert.EqualValues(t, len(got), d.Out, "the sink sees exactly Out")
		assert.EqualValues(t, n-len(got), d.Dropped, "every item not delivered is counted as dropped")
	}
}

func TestProperty_Batch_SendsInputInOrderInBoundedBatches(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, size := r.IntN(300), 1+r.IntN(32)
		maxWait := time.Duration(r.IntN(4)) * 30 * time.Microsecond
		pauses := r.IntN(10)
		p := pipeline.New(context.Background(), relBuf(r)...)
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
		want := relInts(n)
		if n == 0 {
			want = nil
		}
		assert.Equal(t, want, flat, "n=%d size=%d maxWait=%v", n, size, maxWait)
		st := p.Stats()
		relAssertConserved(t, st)
		assert.EqualValues(t, n, relStage(t, st, "batch").Out, "Batch counts items, not batches")
	}
}

func TestProperty_Unbatch_SendsEverySliceInOrder(t *testing.T) {
	r := relRand(t)
	for range relCases {
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
		p := pipeline.New(context.Background(), relBuf(r)...)
		got, err := pipeline.Collect(p, pipeline.Unbatch(p, pipeline.Generate(p, in...)))
		require.NoError(t, err)
		assert.Equal(t, want, got)
		st := p.Stats()
		relAssertConserved(t, st)
		u := relStage(t, st, "unbatch")
		assert.EqualValues(t, len(want), u.In)
		assert.EqualValues(t, len(got), u.Out)
	}
}

func TestProperty_Merge_KeepsOrderOfEachInput(t *testing.T) {
	r := relRand(t)
	for range relCases {
		k := r.IntN(6)
		p := pipeline.New(context.Background(), relBuf(r)...)
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
		relAssertConserved(t, st)
		m := relStage(t, st, "merge")
		assert.EqualValues(t, total, m.In)
		assert.EqualValues(t, total, m.Out)
	}
}

func TestProperty_Tee_SendsEveryItemToEveryOutputInOrder(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, k := r.IntN(300), 1+r.IntN(5)
		p := pipeline.New(context.Background(), relBuf(r)...)
		outs := pipeline.Tee(p, pipeline.Generate(p, relInts(n)...), k)
		require.Len(t, outs, k)
		got := make([][]int, k)
		var wg sync.WaitGroup
		for i, o := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range o {
					relJitter(v + i)
					got[i] = append(got[i], v)
				}
			}()
		}
		wg.Wait()
		require.NoError(t, p.Wait())
		want := relInts(n)
		if n == 0 {
			want = nil
		}
		for i := range got {
			assert.Equal(t, want, got[i], "output %d of %d", i, k)
		}
		st := p.Stats()
		relAssertConserved(t, st)
		assert.EqualValues(t, n, relStage(t, st, "tee").Out)
	}
}

// relRoute is a route that spans the whole int range, negative and huge
// values included.
func relRoute(salt uint64) func(int) int {
	return func(v int) int {
		switch h := relHash(uint64(v), salt); h % 8 {
		case 0:
			return math.MinInt
		case 1:
			return math.MaxInt
		default:
			return int(h)
		}
	}
}

// relWrap is where Partition must send route value x among n outputs.
func relWrap(x, n int) int { return ((x % n) + n) % n }

func TestProperty_Partition_SendsEveryItemToItsOutputInOrder(t *testing.T) {
	r := relRand(t)
	for range relCases {
		n, k := r.IntN(300), 1+r.IntN(7)
		route := relRoute(r.Uint64())
		p := pipeline.New(context.Background(), relBuf(r)...)
		outs := pipeline.Partition(p, pipeline.Generate(p, relInts(n)...), k, route)
		require.Len(t, outs, k)
		got := coreReadAll(outs)
		require.NoError(t, p.Wait())
		want := make([][]int, k)
		for v := range n {
			i := relWrap(route(v), k)
			want[i] = append(want[i], v)
		}
		assert.Equal(t, want, got, "each item on output route(item) mod %d, in input order", k)
		st := p.Stats()
		relAssertConserved(t, st)
		assert.EqualValues(t, n, relStage(t, st, "partition").Out)
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
	r := relRand(t)
	for kind, build := range sources {
		t.Run(kind, func(t *testing.T) {
			for range relCases {
				n := r.IntN(300)
				p := pipeline.New(context.Background(), relBuf(r)...)
				got, err := pipeline.Collect(p, build(p, relInts(n)))
				require.NoError(t, err)
				assert.Equal(t, n, len(got))
				assert.True(t, slices.IsSorted(got))
				s := relStage(t, p.Stats(), kind)
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
	r := relRand(t)
	for name, sink := range sinks {
		t.Run(name, func(t *testing.T) {
			for range relCases {
				n, salt := r.IntN(300), r.Uint64()
				p := pipeline.New(context.Background(), relBuf(r)...)
				last := pipeline.Filter(p, pipeline.Generate(p, relInts(n)...), func(v int) bool {
					return relHash(uint64(v), salt)%2 == 0
				})
				seen, err := sink(p, last)
				require.NoError(t, err)
				st := p.Stats()
				relAssertConserved(t, st)
				assert.EqualValues(t, relStage(t, st, "filter").Out, seen)
			}
		})
	}
}

// relWorkerStage builds a stage of some kind whose calls go through call.
type relWorkerStage func(p *pipeline.Pipeline, in <-chan int, workers int, call func(int), opts ...pipeline.StageOption) <-chan int

var relWorkerStages = map[string]relWorkerStage{
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
	r := relRand(t)
	for kind, build := range relWorkerStages {
		t.Run(kind, func(t *testing.T) {
			for range relCases / 2 {
				n, workers := r.IntN(200), 1+r.IntN(8)
				var g relGauge
				p := pipeline.New(context.Background(), relBuf(r)...)
				out := build(p, pipeline.Generate(p, relInts(n)...), workers, func(v int) {
					g.enter()
					defer g.exit()
					relJitter(v)
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
				relAssertConserved(t, p.Stats())
			}
		})
	}
}

func TestProperty_Limiter_BoundsCallsAcrossStagesAndPipelines(t *testing.T) {
	r := relRand(t)
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range relWorkerStages {
			if k != "foreach" && !yield(k) {
				return
			}
		}
	})
	for range relCases / 2 {
		slots := 1 + r.IntN(4)
		lim := pipeline.NewLimiter(slots)
		var all relGauge
		var wg sync.WaitGroup
		pipes := 1 + r.IntN(2) // one pipeline, or two sharing the limiter
		for range pipes {
			p := pipeline.New(context.Background(), relBuf(r)...)
			ch := pipeline.Generate(p, relInts(r.IntN(150))...)
			gauges := make([]*relGauge, 1+r.IntN(3))
			workers := make([]int, len(gauges))
			for i := range gauges {
				gauges[i], workers[i] = &relGauge{}, 1+r.IntN(6)
				g := gauges[i]
				ch = relWorkerStages[kinds[r.IntN(len(kinds))]](p, ch, workers[i], func(v int) {
					g.enter()
					all.enter()
					if in := lim.InUse(); in > slots {
						t.Errorf("limiter holds %d slots of %d", in, slots)
					}
					relJitter(v)
					all.exit()
					g.exit()
				}, pipeline.Limit(lim))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, pipeline.Drain(p, ch))
				for i, g := range gauges {
					assert.LessOrEqualf(t, g.peak.Load(), int64(workers[i]), "stage %d with %d workers", i, workers[i])
				}
				relAssertConserved(t, p.Stats())
			}()
		}
		wg.Wait()
		assert.LessOrEqualf(t, all.peak.Load(), int64(slots), "%d pipelines sharing a limiter of %d slots", pipes, slots)
		assert.Zero(t, lim.InUse(), "every slot is given back")
	}
}

func TestProperty_Weighted_HoldsAtMostTheLimitersSlots(t *testing.T) {
	r := relRand(t)
	for range relCases / 2 {
		slots := 1 + r.IntN(8)
		lim := pipeline.NewLimiter(slots)
		var held atomic.Int64
		var peak relGauge
		weight := func(v int) int { return 1 + v%slots } // 1..slots: every item fits
		fn := pipeline.Weighted(lim, weight, func(_ context.Context, v int) (int, error) {
			h := held.Add(int64(weight(v)))
			peak.enter()
			if h > int64(slots) {
				t.Errorf("weighted calls hold %d slots of %d", h, slots)
			}
			relJitter(v)
			peak.exit()
			held.Add(-int64(weight(v)))
			return v, nil
		})
		p := pipeline.New(context.Background(), relBuf(r)...)
		n := r.IntN(150)
		got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, relInts(n)...), 1+r.IntN(8), fn))
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
	r := relRand(t)
	for range relCases / 3 {
		workers := 2 + r.IntN(7) // one worker is held by the slow item
		window := max(4*workers, 16)
		held := window - 1 + workers - 1 // results 1..window-1, and one per other worker
		n := 3 * (window + workers)
		var started, finished atomic.Int64
		var released atomic.Bool
		release := make(chan struct{})
		slowStarted := make(chan struct{})
		p := pipeline.New(context.Background(), relBuf(r)...)
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, relInts(n)...), workers, func(_ context.Context, v int) (int, error) {
			if s := started.Add(1); s > int64(held+1) && !released.Load() {
				t.Errorf("call %d started behind the slow item: at most %d may (window %d, %d workers)", s, held+1, window, workers)
			}
			if v == 0 {
				close(slowStarted)
				<-release // the slow item
				return v, nil
			}
			relJitter(v)
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
		assert.Equal(t, relInts(n), got)
	}
}
