package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// Tests of the keyed stages, FanOutKeyed and ThrottleKeyed: per-key order,
// one call at a time per key, no head-of-line blocking, bounded memory, and
// the options, Stop, cancel, Stats and bad arguments every stage honours.
// The helpers are prefixed kd.

// kdItem is an item of a keyed stream: its key and its place among the
// items of that key (0, 1, 2, … in arrival order).
type kdItem struct{ key, seq int }

func kdKey(v kdItem) int { return v.key }

// kdStream returns n items over keys 0..keys-1, skewed so that some keys
// have long runs, with their per-key sequence numbers.
func kdStream(r *rand.Rand, n, keys int) []kdItem {
	next := make([]int, keys)
	items := make([]kdItem, n)
	for i := range items {
		k := r.IntN(1 + r.IntN(keys)) // small keys come more often
		items[i] = kdItem{k, next[k]}
		next[k]++
	}
	return items
}

// kdCheckOrder checks that got holds, for every key, exactly the sequence
// numbers want[key], in that order.
func kdCheckOrder(t *testing.T, got []kdItem, want map[int][]int) {
	t.Helper()
	per := map[int][]int{}
	for _, v := range got {
		per[v.key] = append(per[v.key], v.seq)
	}
	for k, w := range want {
		if len(w) == 0 {
			continue
		}
		assert.Equal(t, w, per[k], "the results of key %d, in the order they left", k)
	}
	for k := range per {
		assert.Contains(t, want, k, "a result of key %d, which had no item", k)
	}
}

// kdMonitor watches the calls of a keyed stage: how many run at once, per
// key and in all, and the order in which each key's items were called.
type kdMonitor struct {
	perKey  sync.Map // key → *atomic.Int32, calls of that key running
	running atomic.Int32
	peak    atomic.Int32
	twice   atomic.Int32 // times a call started while another of its key ran
	mu      sync.Mutex
	calls   map[int][]int // key → sequence numbers, in the order called
}

func (m *kdMonitor) enter(v kdItem) {
	c, _ := m.perKey.LoadOrStore(v.key, new(atomic.Int32))
	if c.(*atomic.Int32).Add(1) != 1 {
		m.twice.Add(1)
	}
	n := m.running.Add(1)
	for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
	}
	m.mu.Lock()
	if m.calls == nil {
		m.calls = map[int][]int{}
	}
	m.calls[v.key] = append(m.calls[v.key], v.seq)
	m.mu.Unlock()
}

func (m *kdMonitor) exit(v kdItem) {
	c, _ := m.perKey.Load(v.key)
	c.(*atomic.Int32).Add(-1)
	m.running.Add(-1)
}

// ---- FanOutKeyed: properties ----

func TestFanOutKeyed_PropertiesOverRandomKeysDurationsAndWorkers(t *testing.T) {
	r := newRand(t)
	for c := range 40 {
		workers := 1 + r.IntN(8)
		keys := 1 + r.IntN(40)
		items := kdStream(r, r.IntN(600), keys)
		failEvery := []int{0, 0, 3, 7}[r.IntN(4)] // items skipped through OnError
		flaky := r.IntN(3) == 0                   // the first attempt of every third item fails; Retry runs it again
		var limit *pipeline.Limiter
		if r.IntN(4) == 0 {
			limit = pipeline.NewLimiter(1 + r.IntN(workers))
		}
		sleepy := r.IntN(3) // 0: no pause, 1: up to 200 µs, 2: a yield
		opts := []pipeline.StageOption{pipeline.Name("keyed"), pipeline.BufferSize(r.IntN(4)),
			pipeline.OnError(func(*pipeline.StageError) error { return nil })}
		if r.IntN(2) == 0 {
			opts = append(opts, pipeline.MaxPending(1+r.IntN(32)))
		}
		if flaky {
			opts = append(opts, pipeline.Retry(2, func(int) time.Duration { return 0 }))
		}
		if limit != nil {
			opts = append(opts, pipeline.Limit(limit))
		}
		name := fmt.Sprintf("case %d: %d items, %d keys, %d workers, fail every %d, flaky %v, limit %v, sleepy %d",
			c, len(items), keys, workers, failEvery, flaky, limit != nil, sleepy)
		pauses := make([]time.Duration, len(items))
		for i := range pauses {
			if sleepy == 1 && r.IntN(4) == 0 {
				pauses[i] = time.Duration(r.IntN(200)) * time.Microsecond
			}
		}

		var m kdMonitor
		var attempts sync.Map
		p := pipeline.New(context.Background())
		index := map[kdItem]int{}
		for i, v := range items {
			index[v] = i
		}
		out := pipeline.FanOutKeyed(p, pipeline.Generate(p, items...), workers, kdKey,
			func(_ context.Context, v kdItem) (kdItem, error) {
				m.enter(v)
				defer m.exit(v)
				i := index[v]
				switch {
				case pauses[i] > 0:
					time.Sleep(pauses[i])
				case sleepy == 2:
					runtime.Gosched()
				}
				if flaky && i%3 == 0 {
					if _, again := attempts.LoadOrStore(i, true); !again {
						return v, errors.New("transient")
					}
				}
				if failEvery > 0 && i%failEvery == 0 {
					return v, errors.New("bad item")
				}
				return v, nil
			}, opts...)
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err, name)

		want := map[int][]int{}
		called := map[int][]int{}
		skipped := 0
		for i, v := range items {
			called[v.key] = append(called[v.key], v.seq)
			if failEvery > 0 && i%failEvery == 0 {
				skipped++
				continue
			}
			want[v.key] = append(want[v.key], v.seq)
		}
		kdCheckOrder(t, got, want)
		assert.Zero(t, m.twice.Load(), "%s: two calls of one key ran at once", name)
		bound := int32(workers)
		if limit != nil {
			bound = int32(min(workers, limit.Limit()))
		}
		assert.LessOrEqual(t, m.peak.Load(), bound, "%s: calls at once", name)
		for k, seqs := range called {
			calls := slices.Compact(slices.Clone(m.calls[k])) // a retried call is its item again
			assert.Equal(t, seqs, calls, "%s: key %d called in arrival order", name, k)
		}
		st := stageStats(t, p, "keyed")
		assert.Equal(t, uint64(len(items)), st.In, name)
		assert.Equal(t, st.In, st.Out+st.Errors, "%s: In = Out + Errors", name)
		assert.Equal(t, uint64(skipped), st.Errors, name)
		assert.Equal(t, uint64(len(got)), st.Out, name)
		assert.Zero(t, st.Pending, name)
		assert.Zero(t, st.Keys, name)
		assert.Zero(t, st.Busy, name)
		if t.Failed() {
			return
		}
	}
}

// A key that is slow delays its own items only: the items of every other
// key come out while it is still in its first call.
func TestFanOutKeyed_ASlowKeyHoldsBackOnlyItsOwnItems(t *testing.T) {
	const others, each, slowItems, slowCall = 50, 10, 5, 200 * time.Millisecond
	const slow = -1
	items := []kdItem{{slow, 0}}
	for i := range others * each {
		items = append(items, kdItem{i % others, i / others})
		if i%100 == 99 && len(items) < others*each {
			items = append(items, kdItem{slow, i/100 + 1})
		}
	}
	require.Equal(t, others*each+slowItems, len(items))

	var firstSlowDone atomic.Bool
	p := pipeline.New(context.Background())
	out := pipeline.FanOutKeyed(p, pipeline.Generate(p, items...), 4, kdKey,
		func(_ context.Context, v kdItem) (kdItem, error) {
			if v.key == slow {
				time.Sleep(slowCall)
				if v.seq == 0 {
					firstSlowDone.Store(true)
				}
			}
			return v, nil
		})
	var got []kdItem
	othersBeforeFirstSlow, othersAfterIt := 0, 0
	sawSlow := false
	for v := range pipeline.All(p, out) {
		got = append(got, v)
		switch {
		case v.key == slow:
			sawSlow = true
		case sawSlow || firstSlowDone.Load():
			othersAfterIt++
		default:
			othersBeforeFirstSlow++
		}
	}
	require.NoError(t, p.Wait())
	assert.Equal(t, others*each, othersBeforeFirstSlow,
		"every item of the other keys came out while the slow key was in its first call")
	assert.Zero(t, othersAfterIt)
	want := map[int][]int{slow: {0, 1, 2, 3, 4}}
	for k := range others {
		want[k] = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	}
	kdCheckOrder(t, got, want)
}

// The same workload through the hand-made equivalent (Partition by key,
// one FanOut of one worker per partition, Merge) blocks: the partition of
// the slow key stalls Partition's one goroutine, and every key behind it.
func TestFanOutKeyed_PartitionByHandBlocksBehindTheSlowKey(t *testing.T) {
	const slowCall = 200 * time.Millisecond
	items := []kdItem{{0, 0}, {0, 1}, {0, 2}, {0, 3}}
	for k := 1; k <= 40; k++ {
		items = append(items, kdItem{k, 0})
	}
	slowFn := func(_ context.Context, v kdItem) (kdItem, error) {
		if v.key == 0 {
			time.Sleep(slowCall)
		}
		return v, nil
	}
	firstSlowAt := func(out []kdItem) int { return slices.IndexFunc(out, func(v kdItem) bool { return v.key == 0 }) }

	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
	parts := pipeline.Partition(p, pipeline.Generate(p, items...), 4, kdKey)
	var outs []<-chan kdItem
	for _, part := range parts {
		outs = append(outs, pipeline.FanOut(p, part, 1, slowFn))
	}
	byHand, err := pipeline.Collect(p, pipeline.Merge(p, outs...))
	require.NoError(t, err)

	p = pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
	keyed, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, items...), 4, kdKey, slowFn))
	require.NoError(t, err)

	assert.Less(t, firstSlowAt(byHand), 40, "by hand, some other key waited for the slow one")
	assert.Equal(t, 40, firstSlowAt(keyed), "keyed, every other key came out first")
}

// A million distinct keys stream through in memory that does not grow with
// them: a key with nothing in flight holds nothing.
func TestFanOutKeyed_MemoryDoesNotGrowWithTheNumberOfKeys(t *testing.T) {
	const keys = 1_000_000
	p := pipeline.New(context.Background())
	src := pipeline.FromSeq(p, func(yield func(int) bool) {
		for i := range keys {
			if !yield(i) {
				return
			}
		}
	})
	out := pipeline.FanOutKeyed(p, src, 4, func(v int) int { return v },
		func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Name("keyed"))
	early, late, maxKeys := kdStreamKeys(t, p, out, keys, "keyed", 50_000)
	t.Logf("live heap after %d keys: %d B, after %d keys: %d B", keys/10, early, keys-1000, late)
	assert.Less(t, int64(late)-int64(early), int64(1<<20),
		"%d more keys grew the live heap by %d B", keys-1000-keys/10, int64(late)-int64(early))
	assert.LessOrEqual(t, maxKeys, 4, "at most one key per worker is held")
}

// kdStreamKeys reads the keys items of out (one per distinct key) and
// returns the live heap after a tenth of them and near the end, and the most
// keys stage held, sampled every every items.
func kdStreamKeys(t *testing.T, p *pipeline.Pipeline, out <-chan int, keys int, stage string, every int) (early, late uint64, maxKeys int) {
	t.Helper()
	n := 0
	for range pipeline.All(p, out) {
		n++
		switch n {
		case keys / 10:
			early = kdHeap()
		case keys - 1000:
			late = kdHeap()
		}
		if n%every == 0 {
			maxKeys = max(maxKeys, stageStats(t, p, stage).Keys)
		}
	}
	require.NoError(t, p.Wait())
	require.Equal(t, keys, n)
	return early, late, maxKeys
}

// kdHeap returns the live heap after a collection.
func kdHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkFanOutKeyed_DistinctKeys streams b.N items of b.N distinct keys
// and reports the live heap the stage kept per key (live-B/key: what a
// collection could not free, measured before the last items leave) and
// what it allocated per key (B/key, allocs/key).
func BenchmarkFanOutKeyed_DistinctKeys(b *testing.B) {
	kdBytesPerKey(b, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
		return pipeline.FanOutKeyed(p, in, 4, func(v int) int { return v },
			func(_ context.Context, v int) (int, error) { return v, nil })
	})
}

// BenchmarkThrottleKeyed_DistinctKeys is the same for ThrottleKeyed, each
// key at most once per 100 µs: the buckets of the keys seen in the last
// 100 µs are remembered, the others forgotten.
func BenchmarkThrottleKeyed_DistinctKeys(b *testing.B) {
	kdBytesPerKey(b, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
		return pipeline.ThrottleKeyed(p, in, func(v int) int { return v }, 100*time.Microsecond, 1)
	})
}

func kdBytesPerKey(b *testing.B, stage func(p *pipeline.Pipeline, in <-chan int) <-chan int) {
	before := kdHeap()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	p := pipeline.New(context.Background())
	src := pipeline.FromSeq(p, func(yield func(int) bool) {
		for i := range b.N {
			if !yield(i) {
				return
			}
		}
	})
	var live uint64
	n := 0
	for range pipeline.All(p, stage(p, src)) {
		n++
		if n == b.N {
			b.StopTimer()
			live = kdHeap()
		}
	}
	if err := p.Wait(); err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(int64(live)-int64(before))/float64(b.N), "live-B/key")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N), "B/key")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/key")
}

// ---- FanOutKeyed: Stop and cancel ----

// kdEndless is an endless source of items over keys 0..keys-1: it emits
// until emit fails and records every item emit accepted. After the k-th it
// calls stop. Call emitted once the pipeline has ended.
func kdEndless(p *pipeline.Pipeline, r *rand.Rand, keys int, k int, stop func()) (src <-chan kdItem, emitted func() []kdItem) {
	var got []kdItem
	var mu sync.Mutex
	next := make([]int, keys)
	seed := r.Uint64()
	src = pipeline.Produce(p, func(_ context.Context, emit func(kdItem) error) error {
		rr := rand.New(rand.NewPCG(seed, 1))
		for i := 0; ; i++ {
			key := rr.IntN(keys)
			v := kdItem{key, next[key]}
			if err := emit(v); err != nil {
				return err
			}
			next[key]++
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
			if i == k {
				stop()
			}
		}
	})
	return src, func() []kdItem {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func kdWantOf(items []kdItem) map[int][]int {
	want := map[int][]int{}
	for _, v := range items {
		want[v.key] = append(want[v.key], v.seq)
	}
	return want
}

func TestFanOutKeyed_StopLosesNothing(t *testing.T) {
	r := newRand(t)
	for c := range 12 {
		p := pipeline.New(context.Background())
		src, emitted := kdEndless(p, r, 1+r.IntN(20), r.IntN(400), p.Stop)
		pause := time.Duration(r.IntN(3)) * 20 * time.Microsecond
		out := pipeline.FanOutKeyed(p, src, 1+r.IntN(6), kdKey, func(_ context.Context, v kdItem) (kdItem, error) {
			if pause > 0 && v.key == 0 {
				time.Sleep(pause)
			}
			return v, nil
		}, pipeline.MaxPending(1+r.IntN(16)))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err, "case %d", c)
		sent := emitted()
		assert.Len(t, got, len(sent), "case %d: every emitted item reached the sink", c)
		kdCheckOrder(t, got, kdWantOf(sent))
	}
}

// With an input made outside the pipeline, the stage is the source as far
// as Stop goes: it takes nothing more, and delivers what it took.
func TestFanOutKeyed_StopOnAnOutsideInputDeliversWhatItTook(t *testing.T) {
	ch := make(chan kdItem, 100)
	for i := range 100 {
		ch <- kdItem{i % 3, i / 3}
	}
	p := pipeline.New(context.Background())
	gate := make(chan struct{})
	out := pipeline.FanOutKeyed(p, ch, 2, kdKey, func(ctx context.Context, v kdItem) (kdItem, error) {
		if v == (kdItem{0, 0}) {
			<-gate
		}
		return v, nil
	}, pipeline.Name("keyed"), pipeline.MaxPending(8))
	require.Eventually(t, func() bool { return stageStats(t, p, "keyed").Pending == 8 }, hangBound, time.Millisecond)
	p.Stop()
	close(gate)
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	st := stageStats(t, p, "keyed")
	assert.Equal(t, uint64(len(got)), st.In, "what it took, it delivered")
	assert.Equal(t, 100-len(got), len(ch), "what it did not take is still in the channel")
	var taken []kdItem
	for i := range len(got) {
		taken = append(taken, kdItem{i % 3, i / 3})
	}
	kdCheckOrder(t, got, kdWantOf(taken))
}

func TestFanOutKeyed_CancelWithNobodyReadingReturnsPromptly(t *testing.T) {
	id := func(_ context.Context, v kdItem) (kdItem, error) { return v, nil }
	for _, tc := range []struct {
		name  string
		keys  int
		fn    func(ctx context.Context, v kdItem) (kdItem, error)
		ready func(st pipeline.StageStats) bool
	}{
		{"output full", 50, id, func(st pipeline.StageStats) bool { return st.QueueLen == st.QueueCap && st.Busy > 0 }},
		{"one key, its line full", 1, id, func(st pipeline.StageStats) bool { return st.Pending == 16 }},
		{"calls waiting on the context", 3, func(ctx context.Context, v kdItem) (kdItem, error) {
			<-ctx.Done()
			return v, ctx.Err()
		}, func(st pipeline.StageStats) bool { return st.Busy == 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := pipeline.New(ctx)
			src, _ := kdEndless(p, newRand(t), tc.keys, -1, nil)
			out := pipeline.FanOutKeyed(p, src, 3, kdKey, tc.fn, pipeline.Name("keyed"), pipeline.MaxPending(16))
			require.Eventually(t, func() bool { return tc.ready(stageStats(t, p, "keyed")) }, hangBound, time.Millisecond)
			cancel()
			assert.ErrorIs(t, waitErr(t, p), context.Canceled)
			for range out {
			}
		})
	}
}

// ---- FanOutKeyed: per-key order under fuzzing ----

// FuzzFanOutKeyed_PerKeyOrder: each byte is an item, its low three bits the
// key, its next two how long the call takes; the results of each key must
// leave in arrival order, one call of a key at a time.
func FuzzFanOutKeyed_PerKeyOrder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 1, 2, 0, 0, 0}, uint8(2))
	f.Add([]byte{0x18, 0, 0, 0, 0x08, 1, 1, 0x10, 2}, uint8(3))
	f.Add([]byte("a keyed stream of bytes, each its own item"), uint8(5))
	f.Add([]byte{7, 7, 7, 7, 7, 7, 7, 7}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, w uint8) {
		if len(data) > 512 {
			data = data[:512] // a pause costs a timer: keep each input short
		}
		workers := 1 + int(w%8)
		next := map[int]int{}
		items := make([]kdItem, len(data))
		pause := map[kdItem]byte{}
		for i, b := range data {
			k := int(b & 7)
			items[i] = kdItem{k, next[k]}
			next[k]++
			pause[items[i]] = (b >> 3) & 3
		}
		var m kdMonitor
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, items...), workers, kdKey,
			func(_ context.Context, v kdItem) (kdItem, error) {
				m.enter(v)
				defer m.exit(v)
				switch pause[v] {
				case 1:
					runtime.Gosched()
				case 2:
					time.Sleep(10 * time.Microsecond)
				}
				return v, nil
			}, pipeline.MaxPending(1+int(w>>3))))
		require.NoError(t, err)
		kdCheckOrder(t, got, kdWantOf(items))
		assert.Zero(t, m.twice.Load(), "two calls of one key at once")
		assert.LessOrEqual(t, int(m.peak.Load()), workers)
	})
}

// ---- FanOutKeyed: options, Stats, Diagram, failures ----

func TestFanOutKeyed_StatsAndDiagramShowWhatWaits(t *testing.T) {
	gate := make(chan struct{})
	p := pipeline.New(context.Background())
	items := []kdItem{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {2, 0}}
	out := pipeline.FanOutKeyed(p, pipeline.Generate(p, items...), 3, kdKey,
		func(_ context.Context, v kdItem) (kdItem, error) {
			if v.key == 1 && v.seq == 0 || v.key == 2 {
				<-gate
			}
			return v, nil
		}, pipeline.Name("accounts"), pipeline.BufferSize(7))
	require.Eventually(t, func() bool {
		st := stageStats(t, p, "accounts")
		return st.In == 5 && st.Pending == 3 && st.Busy == 2
	}, hangBound, time.Millisecond)
	st := stageStats(t, p, "accounts")
	assert.Equal(t, "fanoutkeyed", st.Kind)
	assert.Equal(t, 3, st.Workers)
	assert.Equal(t, 2, st.Keys)
	assert.Equal(t, 7, st.QueueCap)
	assert.Contains(t, p.Diagram(), `<b>accounts</b><br/>fanoutkeyed · 3 workers<br/>in 5 · out 0 · pending 3 · keys 2<br/>⚠ output read by no stage"]`)
	close(gate)
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	kdCheckOrder(t, got, kdWantOf(items))
	st = stageStats(t, p, "accounts")
	assert.NotNil(t, st.Latency, "its calls are timed")
	// Where the time went is measured, not fixed: compare the rest.
	st.Latency, st.RecvWait, st.SendWait, st.Running, st.Utilization, st.Bottleneck = nil, 0, 0, 0, 0, false
	assert.Equal(t, pipeline.StageStats{Name: "accounts", Kind: "fanoutkeyed", Workers: 3, In: 5, Out: 5, QueueCap: 7}, st)
	assert.Contains(t, p.Diagram(), `<b>accounts</b><br/>fanoutkeyed · 3 workers<br/>in 5 · out 5"]`)
}

// At most MaxPending items wait; then the stage takes nothing more and its
// upstream blocks.
func TestFanOutKeyed_MaxPendingBoundsWhatWaitsAndBlocksUpstream(t *testing.T) {
	const maxPending = 5
	gate := make(chan struct{})
	p := pipeline.New(context.Background())
	var emitted atomic.Int64
	src := pipeline.Produce(p, func(_ context.Context, emit func(kdItem) error) error {
		for i := range 100 {
			if err := emit(kdItem{7, i}); err != nil {
				return err
			}
			emitted.Add(1)
		}
		return nil
	}, pipeline.BufferSize(0))
	out := pipeline.FanOutKeyed(p, src, 4, kdKey, func(_ context.Context, v kdItem) (kdItem, error) {
		if v.seq == 0 {
			<-gate
		}
		return v, nil
	}, pipeline.Name("keyed"), pipeline.MaxPending(maxPending))
	require.Eventually(t, func() bool { return stageStats(t, p, "keyed").Pending == maxPending }, hangBound, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // room for a wrong stage to take more
	st := stageStats(t, p, "keyed")
	assert.Equal(t, maxPending, st.Pending)
	assert.Equal(t, uint64(maxPending+1), st.In, "one in its call, MaxPending waiting, no more taken")
	assert.LessOrEqual(t, emitted.Load(), int64(maxPending+2), "upstream blocked: one more at most handed to the unbuffered channel")
	close(gate)
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Len(t, got, 100)
	kdCheckOrder(t, got, kdWantOf(got))
	for i, v := range got {
		assert.Equal(t, i, v.seq)
	}
}

func TestFanOutKeyed_WithoutOnErrorTheFirstErrorFailsThePipeline(t *testing.T) {
	boom := errors.New("boom")
	p := pipeline.New(context.Background())
	_, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, 1, 2, 3, 4, 5, 6), 2,
		func(v int) int { return v % 2 }, func(_ context.Context, v int) (int, error) {
			if v == 4 {
				return 0, boom
			}
			return v, nil
		}, pipeline.Name("keyed")))
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, "keyed", se.Stage)
	assert.Equal(t, 4, se.Item)
}

func TestFanOutKeyed_TimeoutAndRetryApplyToEachCall(t *testing.T) {
	var attempts sync.Map
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, 1, 2, 3, 4, 5, 6), 3,
		func(v int) int { return v % 2 }, func(ctx context.Context, v int) (int, error) {
			n, _ := attempts.LoadOrStore(v, new(atomic.Int32))
			if n.(*atomic.Int32).Add(1) == 1 && v%3 == 0 {
				<-ctx.Done() // the first attempt of 3 and 6 hangs until its deadline
				return 0, ctx.Err()
			}
			return v * 10, nil
		}, pipeline.Name("keyed"), pipeline.Timeout(20*time.Millisecond), pipeline.Retry(2, func(int) time.Duration { return 0 })))
	require.NoError(t, err)
	odd := slices.DeleteFunc(slices.Clone(got), func(v int) bool { return v%20 == 0 })
	even := slices.DeleteFunc(slices.Clone(got), func(v int) bool { return v%20 != 0 })
	assert.Equal(t, []int{10, 30, 50}, odd, "key 1 in order, 3 after its retry")
	assert.Equal(t, []int{20, 40, 60}, even, "key 0 in order, 6 after its retry")
	assert.Equal(t, uint64(2), stageStats(t, p, "keyed").Retries)
}

func TestFanOutKeyed_ASharedLimitCapsTheCalls(t *testing.T) {
	l := pipeline.NewLimiter(2)
	var m kdMonitor
	p := pipeline.New(context.Background())
	items := kdStream(newRand(t), 300, 30)
	got, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, items...), 8, kdKey,
		func(_ context.Context, v kdItem) (kdItem, error) {
			m.enter(v)
			defer m.exit(v)
			time.Sleep(50 * time.Microsecond)
			return v, nil
		}, pipeline.Limit(l)))
	require.NoError(t, err)
	kdCheckOrder(t, got, kdWantOf(items))
	assert.LessOrEqual(t, m.peak.Load(), int32(2))
}

func TestFanOutKeyed_PanicsFailThePipelineWithAPanicError(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(p *pipeline.Pipeline) error
	}{
		{"in fn", func(p *pipeline.Pipeline) error {
			_, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, 1, 2, 3, 4), 2,
				func(v int) int { return v }, func(_ context.Context, v int) (int, error) {
					if v == 3 {
						panic("fn")
					}
					return v, nil
				}))
			return err
		}},
		{"in key", func(p *pipeline.Pipeline) error {
			_, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, 1, 2, 3, 4), 2,
				func(v int) int {
					if v == 3 {
						panic("key")
					}
					return v
				}, func(_ context.Context, v int) (int, error) { return v, nil }))
			return err
		}},
		{"a key that cannot be compared", func(p *pipeline.Pipeline) error {
			_, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, 1, 2, 3, 4), 2,
				func(v int) any {
					if v == 3 {
						return []int{v}
					}
					return v
				}, func(_ context.Context, v int) (int, error) { return v, nil }))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			done := make(chan error, 1)
			go func() { done <- tc.run(p) }()
			select {
			case err := <-done:
				var pe *pipeline.PanicError
				require.ErrorAs(t, err, &pe)
				var se *pipeline.StageError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, 3, se.Item)
			case <-time.After(hangBound):
				require.FailNow(t, "the pipeline hung")
			}
		})
	}
}

// A NaN key equals no key, not even itself: items with NaN keys wait for
// nothing, and no key is left behind.
func TestFanOutKeyed_NaNKeysAreEachTheirOwnKey(t *testing.T) {
	const n = 4
	var running atomic.Int32
	all := make(chan struct{})
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.FanOutKeyed(p, pipeline.Generate(p, 1, 2, 3, 4), n,
		func(int) float64 { return math.NaN() }, func(_ context.Context, v int) (int, error) {
			if running.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-time.After(hangBound):
				return 0, errors.New("the calls did not all run at once")
			}
			return v, nil
		}, pipeline.Name("keyed")))
	require.NoError(t, err)
	assert.ElementsMatch(t, []int{1, 2, 3, 4}, got)
	assert.Zero(t, stageStats(t, p, "keyed").Keys)
}

// ---- ThrottleKeyed ----

// kdTimed is an item of a throttled stream and when it left the stage.
type kdTimed struct {
	v  kdItem
	at time.Duration
}

// kdThrottled runs items through ThrottleKeyed and returns them with the
// time each came out.
func kdThrottled(t *testing.T, items []kdItem, every time.Duration, burst int) []kdTimed {
	t.Helper()
	p := pipeline.New(context.Background())
	out := pipeline.ThrottleKeyed(p, pipeline.Generate(p, items...), kdKey, every, burst)
	start := time.Now()
	var got []kdTimed
	for v := range pipeline.All(p, out) {
		got = append(got, kdTimed{v, time.Since(start)})
	}
	require.NoError(t, p.Wait())
	return got
}

func TestThrottleKeyed_EachKeyKeepsItsRateAndOrder(t *testing.T) {
	const every = 30 * time.Millisecond
	var items []kdItem
	for i := range 5 {
		for k := range 3 {
			items = append(items, kdItem{k, i})
		}
	}
	got := kdThrottled(t, items, every, 1)
	require.Len(t, got, len(items))
	last := map[int]time.Duration{}
	var out []kdItem
	for _, g := range got {
		if at, ok := last[g.v.key]; ok {
			assert.GreaterOrEqual(t, g.at-at, every*8/10, "key %d: two items within less than every: %v", g.v.key, got)
		}
		last[g.v.key] = g.at
		out = append(out, g.v)
	}
	kdCheckOrder(t, out, kdWantOf(items))
	// The keys do not wait for each other: each key's i-th item leaves in
	// the i-th round, before any key's next one.
	for i, g := range got {
		assert.Equal(t, i/3, g.v.seq, "round by round: %v", out)
	}
}

func TestThrottleKeyed_BurstLetsTheFirstItemsOfAKeyThroughTogether(t *testing.T) {
	const every = 300 * time.Millisecond
	items := []kdItem{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {2, 0}, {2, 1}, {2, 2}}
	got := kdThrottled(t, items, every, 3)
	require.Len(t, got, 7)
	var out []kdItem
	for _, g := range got {
		out = append(out, g.v)
	}
	kdCheckOrder(t, out, kdWantOf(items))
	assert.Equal(t, kdItem{1, 3}, out[6], "key 2's burst passes while key 1's fourth waits for its token")
	assert.Less(t, got[5].at, every/2, "the bursts came at once: %v", got)
	assert.GreaterOrEqual(t, got[6].at, every*8/10, "the fourth waited for a token: %v", got)
}

// Items free to go on arrival that wait together (here for a slow
// downstream) leave in arrival order, whatever their keys.
func TestThrottleKeyed_ItemsFreeToGoLeaveInArrivalOrder(t *testing.T) {
	items := []kdItem{{5, 0}, {3, 0}, {8, 0}, {1, 0}, {7, 0}, {2, 0}, {6, 0}, {4, 0}}
	p := pipeline.New(context.Background())
	out := pipeline.ThrottleKeyed(p, pipeline.Generate(p, items...), kdKey, time.Hour, 3,
		pipeline.Name("th"), pipeline.BufferSize(0))
	// The first item is being handed to the unbuffered output; the others
	// wait inside, each the first of its key.
	require.Eventually(t, func() bool { return stageStats(t, p, "th").Pending == len(items)-1 }, hangBound, time.Millisecond)
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, items, got)
}

// When many keys wait at once, the key whose token comes due first goes
// first.
func TestThrottleKeyed_WhenManyKeysWaitTheOneDueFirstGoesFirst(t *testing.T) {
	const every = 50 * time.Millisecond
	items := []kdItem{{1, 0}, {2, 0}, {2, 1}, {1, 1}, {3, 0}, {1, 2}, {2, 2}}
	got := kdThrottled(t, items, every, 1)
	var out []kdItem
	for _, g := range got {
		out = append(out, g.v)
	}
	// 1.0, 2.0 and 3.0 go at once, 1.0 first; so key 1's next token comes
	// due before key 2's, though 2.1 came before 1.1.
	assert.Equal(t, []kdItem{{1, 0}, {2, 0}, {3, 0}, {1, 1}, {2, 1}, {1, 2}, {2, 2}}, out)
}

// A key that must wait does not hold back the items of other keys.
func TestThrottleKeyed_AKeyWaitingForItsTokenHoldsBackNoOtherKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := pipeline.New(ctx)
	items := []kdItem{{0, 0}, {0, 1}, {0, 2}}
	for k := 1; k <= 50; k++ {
		items = append(items, kdItem{k, 0})
	}
	out := pipeline.ThrottleKeyed(p, pipeline.Generate(p, items...), kdKey, time.Hour, 1, pipeline.Name("th"))
	var got []kdItem
	for range 51 {
		select {
		case v := <-out:
			got = append(got, v)
		case <-time.After(hangBound):
			require.FailNow(t, "an item was held back", "got %v", got)
		}
	}
	want := []kdItem{{0, 0}}
	for k := 1; k <= 50; k++ {
		want = append(want, kdItem{k, 0})
	}
	assert.Equal(t, want, got)
	// Out is counted once the send has returned: it may lag the reader.
	require.Eventually(t, func() bool { return stageStats(t, p, "th").Out == 51 }, hangBound, time.Millisecond)
	st := stageStats(t, p, "th")
	assert.Equal(t, 2, st.Pending, "key 0's next two wait an hour")
	assert.Equal(t, 51, st.Keys, "every key has used its token")
	assert.Contains(t, p.Diagram(), "throttlekeyed · 1 worker<br/>in 53 · out 51 · pending 2 · keys 51")
	cancel()
	assert.ErrorIs(t, waitErr(t, p), context.Canceled, "the two waiting were lost: Wait says why")
	for range out {
	}
}

func TestThrottleKeyed_MaxPendingBoundsWhatWaitsAndBlocksUpstream(t *testing.T) {
	const maxPending = 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := pipeline.New(ctx)
	var emitted atomic.Int64
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := range 100 {
			if err := emit(i); err != nil {
				return err
			}
			emitted.Add(1)
		}
		return nil
	}, pipeline.BufferSize(0))
	out := pipeline.ThrottleKeyed(p, src, func(int) string { return "one key" }, time.Hour, 1,
		pipeline.Name("th"), pipeline.MaxPending(maxPending))
	assert.Equal(t, 0, <-out)
	require.Eventually(t, func() bool { return stageStats(t, p, "th").Pending == maxPending }, hangBound, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // room for a wrong stage to take more
	st := stageStats(t, p, "th")
	assert.Equal(t, maxPending, st.Pending)
	assert.Equal(t, uint64(maxPending+1), st.In)
	assert.LessOrEqual(t, emitted.Load(), int64(maxPending+2), "upstream blocked")
	cancel()
	assert.ErrorIs(t, waitErr(t, p), context.Canceled)
	for range out {
	}
}

// Idle keys are forgotten: the keys remembered stay far below the distinct
// keys seen, and a million distinct keys pass in memory that does not grow
// with them (200,000 under the race detector, which takes 20 s for a
// million here; a leak of a bucket per key would still show as 10 MB).
func TestThrottleKeyed_ForgetsIdleKeys(t *testing.T) {
	keys := 1_000_000
	if kdRaceDetector {
		keys = 200_000
	}
	p := pipeline.New(context.Background())
	src := pipeline.FromSeq(p, func(yield func(int) bool) {
		for i := range keys {
			if !yield(i) {
				return
			}
		}
	})
	out := pipeline.ThrottleKeyed(p, src, func(v int) int { return v }, 100*time.Microsecond, 1, pipeline.Name("th"))
	early, late, maxKeys := kdStreamKeys(t, p, out, keys, "th", 10_000)
	t.Logf("live heap after %d keys: %d B, after %d keys: %d B; at most %d keys remembered", keys/10, early, keys-1000, late, maxKeys)
	assert.Less(t, int64(late)-int64(early), int64(1<<20),
		"%d more keys grew the live heap by %d B", keys-1000-keys/10, int64(late)-int64(early))
	assert.Less(t, maxKeys, keys/10, "idle keys are forgotten")
	st := stageStats(t, p, "th")
	assert.Zero(t, st.Keys, "nothing is remembered once the stage has ended")
	assert.Equal(t, st.In, st.Out)
}

func TestThrottleKeyed_StopKeepsTheRateAndLosesNothing(t *testing.T) {
	const every = 20 * time.Millisecond
	p := pipeline.New(context.Background())
	gate := make(chan struct{})
	// The FanOut is not a source: after Stop it goes on, and its items
	// still pass the throttle at their key's rate.
	src := pipeline.FanOut(p, pipeline.Generate(p, 0, 1, 2, 3, 4, 5, 6, 7), 1, func(ctx context.Context, v int) (int, error) {
		if v == 2 {
			<-gate
		}
		return v, nil
	})
	out := pipeline.ThrottleKeyed(p, src, func(v int) int { return v % 2 }, every, 1)
	require.Equal(t, 0, <-out)
	require.Equal(t, 1, <-out)
	p.Stop()
	close(gate)
	start := time.Now()
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3, 4, 5, 6, 7}, got)
	assert.GreaterOrEqual(t, time.Since(start), 2*every*8/10, "each key's three waited their turns")
}

func TestThrottleKeyed_StopOnAnOutsideInputDeliversWhatItTook(t *testing.T) {
	ch := make(chan int, 100)
	for i := range 100 {
		ch <- i
	}
	p := pipeline.New(context.Background())
	out := pipeline.ThrottleKeyed(p, ch, func(v int) int { return v % 10 }, 10*time.Millisecond, 1,
		pipeline.Name("th"), pipeline.MaxPending(20))
	require.Eventually(t, func() bool { return stageStats(t, p, "th").Pending == 20 }, hangBound, time.Millisecond)
	p.Stop()
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, uint64(len(got)), stageStats(t, p, "th").In, "what it took, it delivered")
	assert.Equal(t, 100-len(got), len(ch), "what it did not take is still in the channel")
	slices.Sort(got)
	for i, v := range got {
		assert.Equal(t, i, v)
	}
}

func TestThrottleKeyed_CancelWithNobodyReadingReturnsPromptly(t *testing.T) {
	for _, every := range []time.Duration{time.Nanosecond, time.Duration(math.MaxInt64)} {
		t.Run(every.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := pipeline.New(ctx)
			src, _ := kdEndless(p, newRand(t), 10, -1, nil)
			out := pipeline.ThrottleKeyed(p, src, kdKey, every, 3, pipeline.Name("th"), pipeline.MaxPending(32))
			require.Eventually(t, func() bool {
				st := stageStats(t, p, "th")
				return st.Pending == 32 || st.QueueLen == st.QueueCap
			}, hangBound, time.Millisecond)
			cancel()
			assert.ErrorIs(t, waitErr(t, p), context.Canceled)
			for range out {
			}
		})
	}
}

func TestThrottleKeyed_PanicInKeyFailsThePipeline(t *testing.T) {
	p := pipeline.New(context.Background())
	_, err := pipeline.Collect(p, pipeline.ThrottleKeyed(p, pipeline.Generate(p, 1, 2, 3), func(v int) int {
		if v == 2 {
			panic("key")
		}
		return v
	}, time.Millisecond, 1))
	var pe *pipeline.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "key", pe.Value)
}

func TestThrottleKeyed_NaNKeysNeverWait(t *testing.T) {
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.ThrottleKeyed(p, pipeline.Generate(p, 1, 2, 3, 4),
		func(int) float64 { return math.NaN() }, time.Hour, 1, pipeline.Name("th")))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3, 4}, got)
}

// ---- both: bad arguments ----

func TestKeyedStages_RejectInvalidArguments(t *testing.T) {
	var nilInts <-chan int
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	self := func(v int) int { return v }
	for _, tc := range []struct {
		name    string
		mention []string
		build   func(p *pipeline.Pipeline, in <-chan int) <-chan int
	}{
		{"FanOutKeyed/nil in", []string{"fanoutkeyed", "input"}, func(p *pipeline.Pipeline, _ <-chan int) <-chan int {
			return pipeline.FanOutKeyed(p, nilInts, 2, self, id)
		}},
		{"FanOutKeyed/nil key", []string{"fanoutkeyed", "key"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed[int, int, int](p, in, 2, nil, id)
		}},
		{"FanOutKeyed/nil fn", []string{"fanoutkeyed", "fn"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed[int, int](p, in, 2, self, nil)
		}},
		{"FanOutKeyed/0 workers", []string{"fanoutkeyed", "workers"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed(p, in, 0, self, id)
		}},
		{"FanOutKeyed/-1 workers", []string{"fanoutkeyed", "workers"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed(p, in, -1, self, id)
		}},
		{"FanOutKeyed/too many workers", []string{"fanoutkeyed", "workers"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed(p, in, 1<<20+1, self, id)
		}},
		{"FanOutKeyed/MaxPending(0)", []string{"fanoutkeyed", "MaxPending"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed(p, in, 2, self, id, pipeline.MaxPending(0))
		}},
		{"FanOutKeyed/MaxPending(-3)", []string{"fanoutkeyed", "MaxPending"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutKeyed(p, in, 2, self, id, pipeline.MaxPending(-3))
		}},
		{"ThrottleKeyed/nil in", []string{"throttlekeyed", "input"}, func(p *pipeline.Pipeline, _ <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, nilInts, self, time.Millisecond, 1)
		}},
		{"ThrottleKeyed/nil key", []string{"throttlekeyed", "key"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed[int, int](p, in, nil, time.Millisecond, 1)
		}},
		{"ThrottleKeyed/every 0", []string{"throttlekeyed", "every"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, in, self, 0, 1)
		}},
		{"ThrottleKeyed/every -1ns", []string{"throttlekeyed", "every"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, in, self, -1, 1)
		}},
		{"ThrottleKeyed/burst 0", []string{"throttlekeyed", "burst"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, in, self, time.Millisecond, 0)
		}},
		{"ThrottleKeyed/MaxPending(0)", []string{"throttlekeyed", "MaxPending"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, in, self, time.Millisecond, 1, pipeline.MaxPending(0))
		}},
		{"ThrottleKeyed/Timeout", []string{"throttlekeyed", "Timeout"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, in, self, time.Millisecond, 1, pipeline.Timeout(time.Second))
		}},
		{"ThrottleKeyed/OnError", []string{"throttlekeyed", "OnError"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.ThrottleKeyed(p, in, self, time.Millisecond, 1, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		}},
		{"FanOut/MaxPending", []string{"fanout", "MaxPending"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 2, id, pipeline.MaxPending(10))
		}},
		{"Throttle/MaxPending", []string{"throttle", "MaxPending"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Throttle(p, in, time.Millisecond, 1, pipeline.MaxPending(10))
		}},
		{"FanOutOrdered/MaxPending", []string{"fanoutordered", "MaxPending"}, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutOrdered(p, in, 2, id, pipeline.MaxPending(10))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			out := tc.build(p, pipeline.Generate(p, 1, 2, 3))
			select {
			case _, ok := <-out:
				assert.False(t, ok, "the output is closed at once")
			default:
				assert.Fail(t, "the output is not closed at once")
			}
			err := waitErr(t, p)
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			for _, m := range tc.mention {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
	t.Run("nil Pipeline", func(t *testing.T) {
		_, ok := <-pipeline.FanOutKeyed(nil, make(chan int), 1, self, id)
		assert.False(t, ok)
		_, ok = <-pipeline.ThrottleKeyed(nil, make(chan int), self, time.Millisecond, 1)
		assert.False(t, ok)
	})
}
