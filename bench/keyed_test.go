package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
)

// The keyed workloads (issue 15): items that must be handled one at a time
// and in order per key, different keys in parallel.
//
//   - Keyed: 1,000,000 items over 1,000 keys (drawn at random, fixed seed)
//     on 4 workers; the work is x*3, so what is measured is the cost of
//     keeping per-key order.
//   - KeyedSlowKey: 10,000 items over 100 keys on 4 workers, every hundredth
//     item of key 0, whose calls take 1 ms; the others' calls take no time.
//     It reports the latency of the other keys' items, from the moment the
//     source hands an item on to the moment its result reaches the sink:
//     p50 and p99 (µs) over every run.
//
// The contenders: FanOutKeyed; the hand-made equivalent with stages
// (Partition by key into 4, a FanOut of one worker each, Merge); and a
// careful hand-written per-key queue (one dispatcher goroutine owning a
// queue per key in flight, at most 1024 items waiting, every send in a
// select with ctx.Done()).
//
//	go test -run '^$' -bench 'Keyed' -count 6 . | benchstat -col /impl -

const (
	keyedItems   = 1_000_000
	keyedKeys    = 1_000
	keyedWorkers = 4

	slowKeyItems = 10_000
	slowKeyKeys  = 100
	slowKeyCall  = time.Millisecond
)

// kItem is an item of a keyed stream: its key, its place among the items
// of its key, and when the source handed it on (0 when not timed).
type kItem struct {
	key, seq int32
	at       time.Duration
}

// keyedStream returns n items over keys keys; with slowEvery > 0, every
// slowEvery-th item is of key 0 and no other is.
func keyedStream(n, keys, slowEvery int) []kItem {
	r := rand.New(rand.NewPCG(15, 15))
	next := make([]int32, keys)
	in := make([]kItem, n)
	for i := range in {
		k := r.IntN(keys)
		if slowEvery > 0 {
			k = 1 + r.IntN(keys-1)
			if i%slowEvery == 0 {
				k = 0
			}
		}
		in[i] = kItem{key: int32(k), seq: next[k]}
		next[k]++
	}
	return in
}

// kRun is one run of a keyed contender: the items, the work, and the sink
// each result is handed to (on one goroutine). start is the clock items
// are stamped with, if timed.
type kRun struct {
	in      []kItem
	workers int
	fn      func(kItem) kItem
	sink    func(kItem)
	timed   bool
	start   time.Time
}

// stamp returns v stamped with the time it is handed on, if timed.
func (r *kRun) stamp(v kItem) kItem {
	if r.timed {
		v.at = time.Since(r.start)
	}
	return v
}

type keyedContender struct {
	impl string
	run  func(ctx context.Context, r *kRun) error
}

var keyedContenders = []keyedContender{
	{"pipeline", keyedPipeline},
	{"partition", keyedPartition},
	{"hand", keyedHand},
}

func keyOf(v kItem) int32 { return v.key }

// keyedSource is the pipeline contenders' source: the items, stamped as
// emit takes them.
func keyedSource(p *pipeline.Pipeline, r *kRun) <-chan kItem {
	return pipeline.Produce(p, func(_ context.Context, emit func(kItem) error) error {
		for _, v := range r.in {
			if err := emit(r.stamp(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

func keyedPipeline(ctx context.Context, r *kRun) error {
	p := pipeline.New(ctx)
	out := pipeline.FanOutKeyed(p, keyedSource(p, r), r.workers, keyOf,
		func(_ context.Context, v kItem) (kItem, error) { return r.fn(v), nil })
	for v := range pipeline.All(p, out) {
		r.sink(v)
	}
	return p.Wait()
}

// keyedPartition is per-key order built from stages: Partition by key, one
// FanOut of one worker per partition (so each key's items are handled in
// order), Merge.
func keyedPartition(ctx context.Context, r *kRun) error {
	p := pipeline.New(ctx)
	parts := pipeline.Partition(p, keyedSource(p, r), r.workers, func(v kItem) int { return int(v.key) })
	outs := make([]<-chan kItem, len(parts))
	for i, part := range parts {
		outs[i] = pipeline.FanOut(p, part, 1, func(_ context.Context, v kItem) (kItem, error) { return r.fn(v), nil })
	}
	for v := range pipeline.All(p, pipeline.Merge(p, outs...)) {
		r.sink(v)
	}
	return p.Wait()
}

// keyedHand is the careful hand-written per-key queue: a dispatcher owns a
// queue per key in flight and the items ready to run (whose key is free),
// hands ready items to the workers, reads the source only while none is
// ready, and not at all while 1024 items wait. A worker reports each key it
// is done with; only then may that key's next item start. Channels are
// buffered like the pipeline's (64, and the workers' one per worker), every
// send obeys ctx.
func keyedHand(ctx context.Context, r *kRun) error {
	const maxPending, buf = 1024, 64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	src := make(chan kItem, buf)
	go func() {
		defer close(src)
		for _, v := range r.in {
			select {
			case src <- r.stamp(v):
			case <-ctx.Done():
				return
			}
		}
	}()

	work := make(chan kItem, r.workers)
	done := make(chan int32, r.workers) // a worker holds one item: this never fills
	results := make(chan kItem, buf)
	var wg sync.WaitGroup
	wg.Add(r.workers)
	for range r.workers {
		go func() {
			defer wg.Done()
			for v := range work {
				select {
				case results <- r.fn(v):
				case <-ctx.Done():
					return
				}
				done <- v.key
			}
		}()
	}

	go func() {
		defer close(work)
		waiting := map[int32][]kItem{} // the keys in flight or ready, and the items behind them
		var ready kFIFO                // the first item of each free key, in the order they became so
		pending, inFlight := 0, 0
		in := src
		for in != nil || ready.len() > 0 || inFlight > 0 {
			// Take the source only while nothing is ready to run: reading
			// ahead of free keys only lengthens the queue (and every
			// item's wait), and at maxPending the source must wait.
			var take <-chan kItem
			if ready.len() == 0 && pending < maxPending {
				take = in
			}
			var to chan<- kItem
			var head kItem
			if ready.len() > 0 {
				to, head = work, ready.first()
			}
			select {
			case v, ok := <-take:
				if !ok {
					in = nil
					continue
				}
				pending++
				if q, held := waiting[v.key]; held {
					waiting[v.key] = append(q, v)
				} else {
					waiting[v.key] = nil
					ready.push(v)
				}
			case to <- head:
				ready.pop()
				pending--
				inFlight++
			case k := <-done:
				inFlight--
				if q := waiting[k]; len(q) > 0 {
					ready.push(q[0])
					waiting[k] = q[1:]
				} else {
					delete(waiting, k) // an idle key holds no memory
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	for v := range results {
		r.sink(v)
	}
	return ctx.Err()
}

// kFIFO is a queue of items that reuses its array once it is empty.
type kFIFO struct {
	items []kItem
	head  int
}

func (q *kFIFO) len() int     { return len(q.items) - q.head }
func (q *kFIFO) first() kItem { return q.items[q.head] }
func (q *kFIFO) push(v kItem) { q.items = append(q.items, v) }
func (q *kFIFO) pop() {
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// keyedTriple is the Keyed work.
func keyedTriple(v kItem) kItem {
	v.seq *= 3
	return v
}

// slowKey is the KeyedSlowKey work: key 0's calls take slowKeyCall.
func slowKey(v kItem) kItem {
	if v.key == 0 {
		time.Sleep(slowKeyCall)
	}
	return v
}

// BenchmarkKeyed is 1,000,000 items over 1,000 keys on 4 workers.
func BenchmarkKeyed(b *testing.B) {
	in := keyedStream(keyedItems, keyedKeys, 0)
	for _, c := range keyedContenders {
		b.Run("impl="+c.impl, func(b *testing.B) {
			measure(b, keyedItems, keyedItems, func() (int, error) {
				n := 0
				err := c.run(context.Background(), &kRun{in: in, workers: keyedWorkers, fn: keyedTriple,
					sink: func(kItem) { n++ }})
				return n, err
			})
		})
	}
}

// BenchmarkKeyedSlowKey is one slow key among 100: the other keys' latency.
func BenchmarkKeyedSlowKey(b *testing.B) {
	in := keyedStream(slowKeyItems, slowKeyKeys, slowKeyKeys)
	for _, c := range keyedContenders {
		b.Run("impl="+c.impl, func(b *testing.B) {
			var lat []time.Duration
			measure(b, slowKeyItems, slowKeyItems, func() (int, error) {
				n := 0
				r := &kRun{in: in, workers: keyedWorkers, fn: slowKey, timed: true, start: time.Now()}
				r.sink = func(v kItem) {
					n++
					if v.key != 0 {
						lat = append(lat, time.Since(r.start)-v.at)
					}
				}
				err := c.run(context.Background(), r)
				return n, err
			})
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// keyedCheck runs c on in and reports what is wrong with its results: an
// item missing or twice, or a key's items out of order.
func keyedCheck(c keyedContender, in []kItem, workers int, fn func(kItem) kItem) error {
	var got []kItem
	if err := c.run(context.Background(), &kRun{in: in, workers: workers, fn: fn,
		sink: func(v kItem) { got = append(got, v) }}); err != nil {
		return err
	}
	if len(got) != len(in) {
		return fmt.Errorf("%d results for %d items", len(got), len(in))
	}
	next := map[int32]int32{}
	for _, v := range got {
		if want := fn(kItem{key: v.key, seq: next[v.key]}); v != want {
			return fmt.Errorf("key %d: got %+v, want %+v", v.key, v, want)
		}
		next[v.key]++
	}
	return nil
}

func TestKeyedContenders_HandleEveryItemOnceInEachKeysOrder(t *testing.T) {
	for _, c := range keyedContenders {
		for _, workers := range []int{1, keyedWorkers} {
			t.Run(fmt.Sprintf("impl=%s/workers=%d", c.impl, workers), func(t *testing.T) {
				if err := keyedCheck(c, keyedStream(20_000, keyedKeys, 0), workers, keyedTriple); err != nil {
					t.Error(err)
				}
				if err := keyedCheck(c, keyedStream(500, slowKeyKeys, slowKeyKeys), workers, slowKey); err != nil {
					t.Error(err)
				}
			})
		}
	}
}
