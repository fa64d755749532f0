package pipeline

// This file holds FanOutKeyed, the worker pool that runs one call at a time
// per key and different keys in parallel, and the table of keys in flight
// it runs on.

import (
	"context"
	"sync"
)

// FanOutKeyed runs fn on every item of in with up to workers goroutines, one
// call at a time per key: the items whose key(item) are equal are handled in
// arrival order, each once the result of the one before it has been sent, so
// the results of one key leave in the order its items came. Items of
// different keys run in parallel, and their results leave in completion
// order. A free worker takes the oldest item whose key has no call in
// flight, so a slow key delays only its own items: no head-of-line blocking.
//
// Memory is bounded: the items that come while their key has a call in
// flight wait inside the stage, at most [MaxPending] of them in all
// ([DefaultMaxPending] unless set); once that many wait, the stage takes
// nothing more from in until one has started (upstream blocks; nothing is
// dropped). A key with no call in flight holds no memory, so the number of
// distinct keys does not matter. A key with a longer backlog than MaxPending
// does: it fills the stage and holds back every key until it has caught up,
// so size MaxPending for the backlog of the slowest key.
// [StageStats].Pending counts the items waiting, Keys the keys in flight.
//
// key runs on the stage's workers, before the item waits; a panic in it, or
// a key that cannot be compared (an interface holding a slice), fails the
// pipeline with a [*PanicError]. A key not equal to itself (a NaN) is equal
// to no other key: its item waits for nothing. Errors, [Retry], [Timeout],
// [Limit], [OnError], cancel and [Pipeline.Stop] behave as in [FanOut]; an
// item skipped through OnError sends no result and lets the next item of its
// key start. workers out of [1, 1<<20], a nil key, a nil fn or a nil in is
// an invalid argument.
func FanOutKeyed[T, R any, K comparable](p *Pipeline, in <-chan T, workers int, key func(T) K, fn func(context.Context, T) (R, error), opts ...StageOption) <-chan R {
	sp := callSpec("fanoutkeyed", workers, fn == nil)
	sp.bad = firstProblem(sp.bad, mustNotBeNil(key == nil, "key"))
	sp.allowed, sp.pool = optsKeyedCall, false // one worker at a time takes the input
	q := &keyTable[K, T]{keys: make(map[K]*keyLine[T])}
	q.work.L = &q.mu
	sp.held = q.held
	return build(p, sp, opts, func(n *node[T, R]) {
		q.max = n.cfg.maxPending()
		runKeyed(n, q, key, n.newCaller(fn))
	}, in).out
}

// keyTable holds the keys with a call in flight, each with the line of its
// items that came meanwhile. A free worker takes the input (one at a time):
// an item of a key in flight joins its key's line; any other item the worker
// runs itself, then every item that joins that key's line meanwhile, and
// then it removes the key. So a key with items waiting always has a call in
// flight, and every item not yet started whose key is free is still in the
// input, behind the waiting ones: taking the input is taking the oldest such
// item.
type keyTable[K comparable, T any] struct {
	mu        sync.Mutex
	work      sync.Cond // a waiting worker may take the input, or the stage ends
	keys      map[K]*keyLine[T]
	pending   int // items waiting in the lines
	max       int
	busy      int  // calls in flight
	receiving bool // a worker is taking the next item of the input
	ended     bool // the input has ended
	aborted   bool // cancelled, failed or panicked: every worker returns
	spare     *keyItem[T]
	spareLine *keyLine[T]
}

// keyLine is the items of one key waiting for its call in flight.
type keyLine[T any] struct {
	head, tail *keyItem[T]
	next       *keyLine[T] // in the spare list
}

type keyItem[T any] struct {
	v    T
	k    *tag // its ticket, under a Checkpoint
	next *keyItem[T]
}

// runKeyed runs n's workers on q: each takes the input while nobody else
// does and there is room, and runs the items of its own key.
func runKeyed[K comparable, T, R any](n *node[T, R], q *keyTable[K, T], key func(T) K, c *caller[T, R]) {
	p, out := n.p, n.out
	n.pool(func(t *counters, cur *T) {
		// No deferred unlock: a panic in key or fn comes while the lock is
		// not held.
		q.mu.Lock()
		for !q.aborted && !q.ended {
			if q.receiving || q.pending >= q.max {
				q.work.Wait()
				continue
			}
			q.receiving = true
			q.mu.Unlock()
			v, tk, ok := n.in.nextTagged(p) // tk: the ticket, under a Checkpoint
			var k K
			alone := false
			if ok {
				p.took(t, 1)
				*cur = v
				k = key(v)
				// A NaN is equal to no key; a key that cannot be compared
				// panics here, outside the lock.
				alone = k != k
			}
			q.mu.Lock()
			q.receiving = false
			if !ok {
				q.ended = true
				q.work.Broadcast()
				break
			}
			var line *keyLine[T]
			if !alone {
				if l := q.keys[k]; l != nil {
					q.join(l, v, tk)
					continue
				}
				line = q.newLine()
				q.keys[k] = line
			}
			q.busy++
			for {
				if !q.receiving && !q.ended && q.pending < q.max {
					q.work.Signal() // someone else takes the input meanwhile
				}
				q.mu.Unlock()
				t.cur = tk
				goOn := !(p.cancelled() && p.gaveUp()) && callAndSend(c, t, out, v)
				if goOn {
					t.cur.release() // handled (settle keeps a failed item's ticket)
				}
				t.cur = nil
				q.mu.Lock()
				if !goOn {
					q.abort()
					q.mu.Unlock()
					return
				}
				if line == nil || line.head == nil {
					break
				}
				v, tk = q.leave(line)
				*cur = v
			}
			q.busy--
			if line != nil {
				delete(q.keys, k)
				line.next, q.spareLine = q.spareLine, line
			}
		}
		q.spare, q.spareLine = nil, nil // this worker is done: let the spares go
		q.mu.Unlock()
	}, func(clean bool) {
		if !clean {
			q.mu.Lock()
			q.abort()
			q.mu.Unlock()
		}
	})
}

// abort makes every worker return. q.mu is held.
func (q *keyTable[K, T]) abort() {
	q.aborted = true
	q.work.Broadcast()
}

// newLine returns an empty line. q.mu is held.
func (q *keyTable[K, T]) newLine() *keyLine[T] {
	if l := q.spareLine; l != nil {
		q.spareLine, l.next = l.next, nil
		return l
	}
	return &keyLine[T]{}
}

// join appends v to l. q.mu is held.
func (q *keyTable[K, T]) join(l *keyLine[T], v T, k *tag) {
	it := q.spare
	if it == nil {
		it = &keyItem[T]{}
	}
	q.spare, it.next = it.next, nil
	it.v, it.k = v, k
	if l.tail == nil {
		l.head = it
	} else {
		l.tail.next = it
	}
	l.tail = it
	q.pending++
}

// leave removes and returns the first item of l, which is not empty. q.mu
// is held.
func (q *keyTable[K, T]) leave(l *keyLine[T]) (T, *tag) {
	it := l.head
	l.head = it.next
	if l.head == nil {
		l.tail = nil
	}
	v, k := it.v, it.k
	var zero T
	it.v, it.k, it.next, q.spare = zero, nil, q.spare, it
	q.pending--
	return v, k
}

// held reports the calls in flight, the items waiting and the keys in
// flight, for Stats.
func (q *keyTable[K, T]) held() (busy, pending, keys int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.busy, q.pending, len(q.keys)
}
