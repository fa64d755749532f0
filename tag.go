package pipeline

// This file holds what a Checkpoint tracks items with: the ticket that
// travels beside each item of a checkpointed source, the window of tickets
// still outstanding (oldest first), and the lane, the side queue of tickets
// beside one of the pipeline's channels.

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// ErrUntracked is wrapped by the failure of a pipeline with a [Checkpoint]
// when an item of the checkpointed source was taken from one of the
// pipeline's channels by code other than a stage or sink of the pipeline (a
// range over a stage's output, say), or forwarded by [FromChan]: the
// pipeline can no longer tell when that item is handled, so rather than
// commit a position it cannot vouch for, it fails.
var ErrUntracked = errors.New("pipeline: a checkpointed item left the pipeline's stages")

// A tag is the ticket of the work on one item of a checkpointed source. A root
// ticket is issued by the source for its item and sits in the window until
// its count of references drops to zero: every copy of the item (a FlatMap
// child, a Tee branch) and every stage holding it holds one reference. A
// group ticket stands for a batch: it holds one reference on each of its
// members' tickets and gives them back when it is released itself.
type tag struct {
	refs    atomic.Int32
	w       *window  // a root ticket's window; nil for a group
	at      Position // a root ticket: where its item starts
	members []*tag   // a group ticket: its members' references

	prev, next *tag // a root ticket in its window, while outstanding
}

// hold takes one more reference on k (nil: untracked) and returns k.
func (k *tag) hold() *tag {
	if k != nil {
		k.refs.Add(1)
	}
	return k
}

// release gives back one reference; the last one leaves the window (a root
// ticket) or releases the members (a group).
func (k *tag) release() {
	if k != nil { // inlined: nothing to call for an untracked item
		k.drop()
	}
}

func (k *tag) drop() {
	if k.refs.Add(-1) != 0 {
		return
	}
	if k.w != nil {
		k.w.done(k)
	}
	for _, m := range k.members {
		m.release()
	}
}

// group returns a ticket holding the references in members (nil if none is
// tracked), which it takes over.
func group(members []*tag) *tag {
	tracked := members[:0]
	for _, m := range members {
		if m != nil {
			tracked = append(tracked, m)
		}
	}
	if len(tracked) == 0 {
		return nil
	}
	g := &tag{members: tracked}
	g.refs.Store(1)
	return g
}

// window is the list of a source's tickets still outstanding, in the order
// they were issued: the position every item before the oldest one is handled
// up to is that oldest item's start. It holds only the items in flight.
type window struct {
	mu         sync.Mutex
	head, tail *tag
	n, peak    int      // outstanding, and the most ever outstanding
	last       Position // the position after the newest item issued
	issued     bool
	advanced   func() // called (outside mu) when the oldest item is handled
}

// issue returns the ticket (one reference) of an item at pos, the newest.
func (w *window) issue(pos Position) *tag {
	k := &tag{w: w, at: pos.start()}
	k.refs.Store(1)
	w.mu.Lock()
	k.prev = w.tail
	if w.tail == nil {
		w.head = k
	} else {
		w.tail.next = k
	}
	w.tail = k
	w.n++
	w.peak = max(w.peak, w.n)
	w.last, w.issued = pos.Next(), true
	w.mu.Unlock()
	return k
}

// done removes k, handled, from the window.
func (w *window) done(k *tag) {
	w.mu.Lock()
	oldest := k == w.head
	if k.prev == nil {
		w.head = k.next
	} else {
		k.prev.next = k.next
	}
	if k.next == nil {
		w.tail = k.prev
	} else {
		k.next.prev = k.prev
	}
	k.prev, k.next = nil, nil
	w.n--
	w.mu.Unlock()
	if oldest && w.advanced != nil {
		w.advanced()
	}
}

// mark returns the position up to which every item issued is handled: the
// start of the oldest outstanding item, or the end of the newest if none is.
// false: no item was issued.
func (w *window) mark() (Position, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.head != nil {
		return w.head.at, true
	}
	return w.last, w.issued
}

// outstanding returns how many items are outstanding now and at most.
func (w *window) outstanding() (now, peak int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.peak
}

// start returns the position at which p's item starts, as [Position.Next]
// returns the one after it.
func (p Position) start() Position {
	return Position{Offset: p.Offset, End: p.Offset, Line: p.Line, EndLine: p.Line}
}

// tracking is a pipeline's lanes, one per channel that carries items of a
// checkpointed source: set on the pipeline (before any stage is built) by
// [NewCheckpoint]; nil otherwise.
type tracking struct {
	lanes sync.Map // channel (its pointer) → *lane
}

// laneOf returns the lane of ch, a channel of capacity size.
func (tr *tracking) laneOf(ch any, size int) *lane {
	key := reflect.ValueOf(ch).Pointer()
	if l, ok := tr.lanes.Load(key); ok {
		return l.(*lane)
	}
	l, _ := tr.lanes.LoadOrStore(key, &lane{size: size, q: make([]*tag, size+2)})
	return l.(*lane)
}

// lane is the queue of tickets beside a channel: each send pushes the
// item's ticket (nil if untracked) before the value goes in, under send, so
// that senders push in the order their values enter the channel; each
// receive pops after taking the value, under recv. The queue then holds at
// most the channel's capacity plus the one ticket a sender has pushed and
// the one a receiver is about to pop; more means values are taken without
// their tickets, by code that is not a stage.
type lane struct {
	send, recv sync.Mutex
	mu         sync.Mutex
	q          []*tag // a ring of len size+2
	first, n   int
	size       int // the channel's capacity
}

// push queues k (under send).
func (l *lane) push(k *tag) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == len(l.q) {
		return fmt.Errorf("%w: a channel of the pipeline (capacity %d) is read by code that is not a stage or sink of the pipeline", ErrUntracked, l.size)
	}
	l.q[(l.first+l.n)%len(l.q)] = k
	l.n++
	return nil
}

// unpush takes back the ticket just pushed (under send), its value not sent.
func (l *lane) unpush() {
	l.mu.Lock()
	l.n--
	l.q[(l.first+l.n)%len(l.q)] = nil
	l.mu.Unlock()
}

// pop returns the ticket of the value just received (under recv).
func (l *lane) pop() *tag {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return nil
	}
	k := l.q[l.first]
	l.q[l.first] = nil
	l.first = (l.first + 1) % len(l.q)
	l.n--
	return k
}
