package pipeline

// This file holds FanOutOrdered, the worker pool that keeps input order, and
// the reorder window it runs on.

import (
	"context"
	"sync"
)

// FanOutOrdered is [FanOut] that sends results in input order. At most
// workers calls run at once; a result that finishes early waits in a fixed
// window of 4×workers results (at least 16) for the ones before it, and a
// worker whose result is beyond the window waits for room, so memory does not
// grow with the input. Items skipped through [OnError] leave no gap. Errors,
// cancel and Stop behave as in FanOut.
func FanOutOrdered[T, R any](p *Pipeline, in <-chan T, workers int, fn func(context.Context, T) (R, error), opts ...StageOption) <-chan R {
	sp := callSpec("fanoutordered", workers, fn == nil)
	sp.pool = false // the order items are taken in is the order results leave in
	return build(p, sp, opts, func(n *node[T, R]) {
		runOrdered(n, max(4*workers, 16), n.newCaller(fn))
	}, in).out
}

// runOrdered runs n's workers so that results keep input order: workers
// take items in turn (numbering them as they do), run concurrently, and
// results leave in input order. At most window finished results wait for an
// earlier one.
func runOrdered[T, R any](n *node[T, R], window int, c *caller[T, R]) {
	p, out := n.p, n.out
	o := &reorder[R]{max: window}
	if size := min(window, initialWindow); size <= len(o.first) {
		o.ring = o.first[:size]
	} else {
		o.ring = make([]slot[R], size)
	}
	o.room.L = &o.mu
	n.pool(func(t *counters, cur *T) {
		// A worker that panics or exits (not returning) aborts the others,
		// as does one that gives up.
		returned := false
		defer func() {
			if !returned {
				o.abort()
			}
		}()
		for {
			o.inMu.Lock()
			v, ok := n.in.nextTimed(p, t)
			seq := o.nextIn
			o.nextIn++
			o.inMu.Unlock()
			k := t.cur // under a Checkpoint: the window holds the ticket, not t
			t.cur = nil
			if !ok {
				o.abortIfCancelled(p)
				returned = true
				return
			}
			p.took(t, 1)
			*cur = v
			start := t.callStart(p)
			r, err := c.call(t, v)
			callEnd(p, &n.s, t, start, v, err)
			t.called.Add(1)
			state := uint8(1)
			if err != nil {
				t.cur = k // settle keeps a failed item's ticket
				goOn := c.settle(t, v, err)
				k, t.cur = t.cur, nil
				if !goOn {
					return // aborts
				}
				state = 2
			}
			if !o.put(p, t, out, seq, r, state, k) {
				returned = true
				return
			}
		}
	}, nil)
}

// initialWindow is the reorder ring's first size: it doubles, up to the
// stage's window, only as results actually wait, so that a large worker count
// costs no memory up front.
const initialWindow = 64

// reorder holds finished results until every earlier one has been sent. It is
// a ring bounded by max: memory does not grow with the input, and a worker
// whose result is too far ahead waits for room. Whoever stores the next
// result to be sent becomes the flusher and sends every consecutive ready
// result.
type reorder[R any] struct {
	inMu   sync.Mutex // held while a worker takes an item and numbers it
	nextIn uint64

	mu       sync.Mutex
	room     sync.Cond
	ring     []slot[R]
	max      int // the window: the most the ring grows to
	nextOut  uint64
	flushing bool
	aborted  bool
	first    [16]slot[R] // the ring of a small window (up to four workers)
}

type slot[R any] struct {
	v     R
	state uint8 // 0 empty, 1 value, 2 skipped
	k     *tag  // the item's ticket, under a Checkpoint
}

// put stores the result of item seq and, if it is the next to go out, sends
// it and every consecutive ready result after it. It reports false if the
// stage must stop (cancelled or aborted by another worker).
func (o *reorder[R]) put(p *Pipeline, t *counters, out chan R, seq uint64, v R, state uint8, k *tag) bool {
	o.mu.Lock()
	for seq-o.nextOut >= uint64(len(o.ring)) && !o.aborted {
		if len(o.ring) < o.max {
			o.grow()
			continue
		}
		o.room.Wait()
	}
	if o.aborted {
		o.mu.Unlock()
		p.interrupted() // this worker's result is lost with the stage
		return false
	}
	o.ring[seq%uint64(len(o.ring))] = slot[R]{v: v, state: state, k: k}
	if o.flushing || seq != o.nextOut {
		o.mu.Unlock()
		return true
	}
	o.flushing = true
	var zero R
	for {
		// The ring may have grown while the lock was released to send.
		sl := &o.ring[o.nextOut%uint64(len(o.ring))]
		if sl.state == 0 {
			break
		}
		r, st, k := sl.v, sl.state, sl.k
		sl.v, sl.state, sl.k = zero, 0, nil
		o.nextOut++
		o.room.Broadcast()
		if st != 1 {
			if k != nil { // skipped: handled
				o.mu.Unlock()
				k.release()
				o.mu.Lock()
			}
			continue
		}
		o.mu.Unlock()
		sent := sendWith(p, t, out, r, k)
		o.mu.Lock()
		if !sent {
			o.flushing = false
			o.aborted = true
			o.room.Broadcast()
			o.mu.Unlock()
			return false
		}
	}
	o.flushing = false
	o.mu.Unlock()
	return true
}

// grow doubles the ring (up to max), keeping every waiting result at its
// place for the new size. o.mu is held.
func (o *reorder[R]) grow() {
	old := o.ring
	o.ring = make([]slot[R], min(2*len(old), o.max))
	for seq := o.nextOut; seq < o.nextOut+uint64(len(old)); seq++ {
		o.ring[seq%uint64(len(o.ring))] = old[seq%uint64(len(old))]
	}
}

func (o *reorder[R]) abort() {
	o.mu.Lock()
	o.aborted = true
	o.room.Broadcast()
	o.mu.Unlock()
}

// abortIfCancelled aborts the window if the input ended by a cancellation:
// workers waiting for room must not wait for results that never come.
func (o *reorder[R]) abortIfCancelled(p *Pipeline) {
	if p.cancelled() {
		o.abort()
	}
}
