package pipeline

// This file holds ThrottleKeyed, a rate limit per key that makes items wait
// rather than dropping them, and the buckets and queue by due time it runs on.

import (
	"container/heap"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// ThrottleKeyed passes the items of in on at a limited rate per key: the
// items whose key(item) are equal pass at most burst at once, then one per
// every on average (a token bucket per key, as [Throttle] has for all
// items). An item whose key has no token waits for it inside the stage,
// without holding back the items of other keys; nothing is dropped.
//
// Order: the items of one key leave in arrival order. Across keys, an item
// may go from its arrival or, if its key is over its rate, from when the
// key's next token comes due (counted from when its earlier items left);
// items leave in the order of that moment, then of arrival. So when many keys
// wait at once, the one whose token comes due first goes first, and a key
// waits only for its own rate.
//
// Memory is bounded: at most [MaxPending] items wait in all
// ([DefaultMaxPending] unless set); once that many wait (keys far over their
// rate, or a slow downstream), the stage takes nothing more from in until one
// has left: upstream blocks. A key is remembered only while its bucket is
// not full again, at most burst×every after its last item left; then it is
// forgotten, which changes nothing (a full bucket is a new one), so memory
// grows with the keys seen within that time, not with the distinct keys of
// the stream. [StageStats].Pending counts the items waiting, Keys the keys
// remembered. A key not equal to itself (a NaN) is equal to no other key:
// its item never waits.
//
// key runs on the stage's goroutine that takes the input; a panic in it, or
// a key that cannot be compared, fails the pipeline with a [*PanicError].
// Waiting for a token ends when the pipeline is cancelled; on
// [Pipeline.Stop] every item already taken, and those still coming, leave at
// their rate. No timer or goroutine is left once it returns. A nil key,
// every <= 0, burst < 1 or a nil in is an invalid argument. It accepts
// [Name], [BufferSize] and [MaxPending].
func ThrottleKeyed[T any, K comparable](p *Pipeline, in <-chan T, key func(T) K, every time.Duration, burst int, opts ...StageOption) <-chan T {
	bad := mustNotBeNil(key == nil, "key")
	switch {
	case bad != "":
	case every <= 0:
		bad = "every = " + every.String() + ", must be > 0"
	case burst < 1:
		bad = fmt.Sprintf("burst = %d, must be >= 1", burst)
	}
	q := &buckets[K, T]{keys: make(map[K]*bucket[T]), wake: make(chan struct{}, 1), sweepAt: minSweep}
	q.room.L = &q.mu
	sp := spec{kind: "throttlekeyed", workers: 1, outs: 1, allowed: optsKeyedThrottle, bad: bad, held: q.held}
	return build(p, sp, opts, func(n *node[T, T]) {
		q.max, q.start, q.every = n.cfg.maxPending(), time.Now(), int64(every)
		if int64(burst-1) > math.MaxInt64/q.every {
			q.tolerance = math.MaxInt64
		} else {
			q.tolerance = int64(burst-1) * q.every
		}
		n.pair(func(t *counters, cur *T) { q.intake(n, t, cur, key) },
			func(t *counters) { q.outlet(n, t) },
			func(clean bool) {
				if !clean {
					q.mu.Lock()
					q.abort()
					q.mu.Unlock()
				}
			})
	}, in).out
}

// minSweep is the least number of remembered keys at which the buckets are
// swept of the keys that can be forgotten.
const minSweep = 1024

// buckets is ThrottleKeyed's state. Times are nanoseconds since start. Each
// bucket is kept as the generic cell rate algorithm does: tat, the
// theoretical arrival time, is when the bucket will be full again; an item
// may leave at t >= tat - tolerance, and its leaving sets tat to
// max(tat, t) + every.
type buckets[K comparable, T any] struct {
	mu        sync.Mutex
	room      sync.Cond // the intake waits here while max items wait
	keys      map[K]*bucket[T]
	due       dueHeap[T] // the buckets with items waiting, by when the first may leave
	pending   int
	max       int
	seq       uint64
	ended     bool          // the input has ended
	aborted   bool          // cancelled or panicked: both goroutines return
	idle      bool          // the outlet waits for wake
	wake      chan struct{} // told when idle and a bucket's first item arrives, or the end
	start     time.Time
	every     int64
	tolerance int64 // (burst-1)·every
	sweepAt   int   // sweep when this many keys are remembered
	spare     *bucketItem[T]
}

type bucket[T any] struct {
	tat        int64
	at         int64 // when head was free to go: on arrival, or when its token came due
	head, tail *bucketItem[T]
}

type bucketItem[T any] struct {
	v       T
	k       *tag // its ticket, under a Checkpoint
	seq     uint64
	arrived int64
	next    *bucketItem[T]
}

func (q *buckets[K, T]) now() int64 { return int64(time.Since(q.start)) }

// intake takes the items of in into their buckets while fewer than max wait.
func (q *buckets[K, T]) intake(n *node[T, T], t *counters, cur *T, key func(T) K) {
	q.mu.Lock()
	for !q.aborted {
		if q.pending >= q.max {
			q.room.Wait()
			continue
		}
		q.mu.Unlock()
		v, tk, ok := n.in.nextTagged(n.p) // tk: the ticket, under a Checkpoint
		var k K
		var alone bool
		if ok {
			n.p.took(t, 1)
			*cur = v
			k = key(v)
			// A NaN is equal to no key; a key that cannot be compared
			// panics here, outside the lock.
			alone = k != k
		}
		q.mu.Lock()
		if !ok || q.aborted {
			q.ended = true
			q.poke()
			break
		}
		q.add(k, v, tk, alone)
	}
	q.mu.Unlock()
}

// add puts v in the bucket of k, a new one (not remembered) if k is alone.
// q.mu is held.
func (q *buckets[K, T]) add(k K, v T, tk *tag, alone bool) {
	var b *bucket[T]
	if !alone {
		b = q.keys[k]
	}
	if b == nil {
		b = &bucket[T]{}
		if !alone {
			if len(q.keys) >= q.sweepAt {
				q.sweep()
			}
			q.keys[k] = b
		}
	}
	it := q.spare
	if it == nil {
		it = &bucketItem[T]{}
	}
	q.spare, it.next = it.next, nil
	it.v, it.k, it.seq, it.arrived = v, tk, q.seq, q.now()
	q.seq++
	q.pending++
	if b.head != nil {
		b.tail.next, b.tail = it, it
		return
	}
	b.head, b.tail = it, it
	b.at = max(it.arrived, b.tat-q.tolerance)
	heap.Push(&q.due, b)
	q.poke()
}

// sweep forgets the keys whose bucket is full again and holds no item, into
// a new map so that the memory of the old one goes. q.mu is held.
func (q *buckets[K, T]) sweep() {
	now := q.now()
	kept := make(map[K]*bucket[T], len(q.keys)/2)
	for k, b := range q.keys {
		if b.head != nil || b.tat > now {
			kept[k] = b
		}
	}
	q.keys = kept
	q.sweepAt = max(2*len(kept), minSweep)
}

// outlet sends each waiting item once its bucket lets it leave.
func (q *buckets[K, T]) outlet(n *node[T, T], t *counters) {
	p := n.p
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	yielded := false
	q.mu.Lock()
	for !q.aborted && (len(q.due) > 0 || !q.ended) {
		var wait <-chan time.Time
		if len(q.due) > 0 {
			b, now := q.due[0], q.now()
			if b.at <= now {
				yielded = false
				v, tk := q.leave(b, now)
				q.mu.Unlock()
				sent := sendWith(p, t, n.out, v, tk)
				q.mu.Lock()
				if !sent {
					q.abort()
				}
				continue
			}
			timer.Reset(time.Duration(b.at - now))
			wait = timer.C
		} else if !yielded { // let the intake bring more before parking
			yielded = true
			q.mu.Unlock()
			runtime.Gosched()
			q.mu.Lock()
			continue
		}
		q.idle = true
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-wait:
		case <-p.done:
			p.interrupted()
			q.mu.Lock()
			q.abort()
			continue
		}
		timer.Stop()
		q.mu.Lock()
		q.idle = false
	}
	q.keys, q.spare = nil, nil // nothing is remembered once the stage has ended
	q.mu.Unlock()
}

// leave takes the first item of b, the bucket due first, at now. q.mu is
// held.
func (q *buckets[K, T]) leave(b *bucket[T], now int64) (T, *tag) {
	it := b.head
	b.head = it.next
	b.tat = max(b.tat, now)
	if b.tat > math.MaxInt64-q.every {
		b.tat = math.MaxInt64
	} else {
		b.tat += q.every
	}
	if b.head == nil {
		b.tail = nil
		heap.Pop(&q.due)
	} else {
		b.at = max(b.head.arrived, b.tat-q.tolerance)
		heap.Fix(&q.due, 0)
	}
	v, tk := it.v, it.k
	var zero T
	it.v, it.k, it.next, q.spare = zero, nil, q.spare, it
	q.pending--
	q.room.Signal()
	return v, tk
}

// poke wakes the outlet if it waits. q.mu is held.
func (q *buckets[K, T]) poke() {
	if q.idle {
		q.idle = false
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// abort makes both goroutines return. q.mu is held.
func (q *buckets[K, T]) abort() {
	q.aborted = true
	q.room.Broadcast()
	q.poke()
}

// held reports the items waiting and the keys remembered, for Stats.
func (q *buckets[K, T]) held() (busy, pending, keys int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return 0, q.pending, len(q.keys)
}

// dueHeap orders buckets by when their first item may leave, then by its
// arrival.
type dueHeap[T any] []*bucket[T]

func (h dueHeap[T]) Len() int { return len(h) }
func (h dueHeap[T]) Less(i, j int) bool {
	a, b := h[i], h[j]
	return a.at < b.at || (a.at == b.at && a.head.seq < b.head.seq)
}
func (h dueHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap[T]) Push(x any)   { *h = append(*h, x.(*bucket[T])) }
func (h *dueHeap[T]) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return b
}
