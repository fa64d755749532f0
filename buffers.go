package pipeline

// This file holds how much a stage's output holds: the default capacity of
// its channel, and the spill, the room a source's output gains when the
// stage that reads it has more workers than the channel has slots.

import (
	"context"
	"sync"
	"unsafe"
)

// spill is a FIFO that extends a source's channel: each item put goes to
// the channel while the spill is empty and the channel has room, and to the
// spill otherwise, up to max items; when the spill is full the source waits
// until the readers have taken half of it, and then refills that half in
// one go (a wakeup per max/2 items, not per item). So every item in the spill is
// newer than every item in the channel, and readers that take from the
// channel first, then from the spill, take the items in the order they
// were put.
type spill[T any] struct {
	mu    sync.Mutex
	items []T // items[head:] are waiting
	head  int
	max   int
	room  chan struct{} // a token each time a pop leaves the spill half full
}

func newSpill[T any](max int) *spill[T] {
	return &spill[T]{max: max, room: make(chan struct{}, 1)}
}

// offer puts v in ch or in the spill, without waiting, and reports false if
// the spill is full.
func (q *spill[T]) offer(ch chan<- T, v T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		select {
		case ch <- v:
			return true
		default:
		}
	}
	if len(q.items)-q.head >= q.max {
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
	return true
}

// put is offer that waits, while the spill is full, for the readers to take
// half of its items, unless the pipeline is cancelled first (it then records
// why and returns the cause) or stop is closed first (ErrStopped). The time
// it waits is t's SendWait.
func (q *spill[T]) put(p *Pipeline, t *counters, ch chan<- T, v T, stop <-chan struct{}) error {
	for !q.offer(ch, v) {
		start := monotonic()
		select {
		case <-q.room:
		case <-p.done:
			p.interrupted()
			return context.Cause(p.ctx)
		case <-stop:
			return ErrStopped
		}
		t.sendWait.Add(int64(monotonic() - start))
	}
	return nil
}

// pop takes the oldest item of the spill.
func (q *spill[T]) pop() (v T, ok bool) {
	q.mu.Lock()
	if q.head < len(q.items) {
		v, ok = q.items[q.head], true
		var zero T
		q.items[q.head] = zero // the spill does not keep what it handed on
		q.head++
		if q.head == len(q.items) {
			q.items, q.head = q.items[:0], 0
		}
		if len(q.items)-q.head == q.max/2 {
			select { // half empty: wake the source if it waits in put
			case q.room <- struct{}{}:
			default:
			}
		}
	}
	q.mu.Unlock()
	return v, ok
}

// waiting is how many items the spill holds.
func (q *spill[T]) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// autoBufferBytes bounds what outputBuffer adds to a default buffer.
const autoBufferBytes = 64 << 10

// outputBuffer is the capacity of an output of a stage given no
// [BufferSize]: the pipeline's [DefaultBuffer] if one was set; else
// [DefaultBufferSize], raised to the stage's worker count (so that every
// worker can hand over a result while its reader is not running), within
// autoBufferBytes of items.
func outputBuffer[R any](p *Pipeline, workers int, bad bool) int {
	if p.bufSet || bad {
		return p.buf
	}
	want := workers
	var zero R
	if size := int(unsafe.Sizeof(zero)); size > 0 {
		want = min(want, autoBufferBytes/size)
	}
	return max(p.buf, want)
}

// spiller is a stage that can extend its output with a spill.
type spiller[R any] interface{ attach(q *spill[R]) bool }

// attachSpill gives the output of maker, the stage that made the input of
// a stage with workers workers, a spill of room for workers items, and
// returns it (nil if maker cannot take one). The stage's workers outnumber
// the input's slots: parked on that full channel, a source is woken by
// every receive and refills one slot, and a stage's many workers, woken
// together (by their timers, say), find it empty and park too, while the
// source waits for a processor among them. With the spill the source runs
// ahead of the stage by up to workers items more, without parking.
func attachSpill[T any](maker *stage, workers int) *spill[T] {
	if maker == nil {
		return nil
	}
	w, ok := maker.queue.(spiller[T])
	if !ok {
		return nil
	}
	if q := newSpill[T](workers); w.attach(q) {
		return q
	}
	return nil
}
