package pipeline

// This file holds Batch (items into slices, by size and by time) and Unbatch
// (slices back into items).

import (
	"fmt"
	"time"
)

// Batch groups the items of in, in order, into slices of at most size items.
// A batch is sent when it holds size items, or when maxWait has passed since
// its first item arrived (maxWait <= 0: by size only); the partial batch is
// sent when the input closes and at once on [Pipeline.Stop] (items arriving
// after Stop form new batches until the input closes). No batch is ever
// empty, and each slice is new: downstream may keep it. [StageStats] counts
// items, not batches, in In and Out. On cancel the partial batch is
// discarded. size < 1 or a nil in is an invalid argument.
func Batch[T any](p *Pipeline, in <-chan T, size int, maxWait time.Duration, opts ...StageOption) <-chan []T {
	bad := ""
	if size < 1 {
		bad = fmt.Sprintf("size = %d, must be >= 1", size)
	}
	sp := spec{kind: "batch", workers: 1, outs: 1, allowed: optsBasic, bad: bad}
	return build(p, sp, opts, func(n *node[T, []T]) {
		n.goOne(func(t *counters) {
			b := batcher[T]{p: p, out: n.out, t: t, size: size}
			b.run(n.in, maxWait)
		}, nil)
	}, in).out
}

// batcher is Batch's state: the batch being filled.
type batcher[T any] struct {
	p    *Pipeline
	out  chan []T
	t    *counters
	size int
	cur  []T
	tags []*tag // under a Checkpoint, the tickets of cur's items
}

// What the batcher's wait ended with.
const (
	gotItem = iota // an item, or the input closed
	gotExpired
	gotStop
	gotDone
)

// add appends v and sends the batch if it is full; false means stop.
func (b *batcher[T]) add(v T, k *tag) bool {
	if b.p.track != nil {
		b.tags = append(b.tags, k)
	}
	if b.cur == nil {
		// A batch costs what it holds: a huge size with a maxWait must not
		// reserve size items up front.
		b.cur = make([]T, 0, min(b.size, 4096))
	}
	b.p.took(b.t, 1)
	b.cur = append(b.cur, v)
	if len(b.cur) < b.size {
		return true
	}
	return b.flush()
}

// flush sends the partial batch, if any; false means the pipeline is done.
// After cancellation the batch is discarded, not sent.
func (b *batcher[T]) flush() bool {
	if b.p.interrupted() {
		return false
	}
	if len(b.cur) == 0 {
		return true
	}
	n := uint64(len(b.cur))
	if b.p.track != nil { // under a Checkpoint: the batch holds its items' tickets
		if deliverTagged(b.p, b.t, b.out, b.cur, group(b.tags), nil) != nil {
			return false
		}
	} else if deliverTimed(b.p, b.t, b.out, b.cur, nil) != nil {
		return false
	}
	b.t.out.Add(n)
	b.cur, b.tags = nil, nil
	return true
}

// run batches by size and, if maxWait > 0, by the time since a batch's first
// item; it flushes on Stop and when the input closes. A received item costs no
// select unless the input is empty. It is the one stage loop that does not
// use the shared receive loop: it waits on its input, its timer and Stop at
// once.
//
// The pipeline's own input channel closes on cancel; a foreign one does not,
// so run also watches the context for it, and treats Stop as its end, as
// [FromChan] would.
func (b *batcher[T]) run(src inlet[T], maxWait time.Duration) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var expired <-chan time.Time // non-nil while a partial batch waits
	in, stop := src.ch, b.p.stopChan()
	var done <-chan struct{}
	if src.foreign() {
		done = b.p.done
	}
	var l *lane // under a Checkpoint, the lane of in: tickets beside items
	if b.p.track != nil && !src.foreign() {
		l = b.p.track.laneOf(in, cap(in))
	}
	for {
		var v T
		var ok bool
		ev := gotItem
		if l != nil {
			l.recv.Lock()
		}
		select {
		case v, ok = <-in:
		default:
			// Waiting on the input, the timer or Stop: RecvWait, as the
			// shared receive loop counts it.
			start := monotonic()
			select {
			case v, ok = <-in:
			case <-expired:
				ev = gotExpired
			case <-stop:
				ev = gotStop
			case <-done:
				ev = gotDone
			}
			b.t.recvWait.Add(int64(monotonic() - start))
		}
		var k *tag
		if l != nil {
			if ev == gotItem && ok {
				k = l.pop()
			}
			l.recv.Unlock()
		}
		switch ev {
		case gotExpired:
			expired = nil
			if !b.flush() {
				return
			}
			continue
		case gotStop:
			stop = nil
			expired = nil
			timer.Stop()
			if !b.flush() || src.foreign() {
				return
			}
			continue
		case gotDone:
			b.p.interrupted()
			return
		}
		if !ok {
			b.flush()
			return
		}
		if b.p.cancelled() && b.p.gaveUp() {
			return
		}
		if src.foreign() && b.p.stopped.Load() {
			// Stop came while the item was taken: it is the last one.
			if b.add(v, k) {
				b.flush()
			}
			return
		}
		if !b.add(v, k) {
			return
		}
		switch {
		case len(b.cur) == 0: // just sent a full batch
			if expired != nil {
				timer.Stop()
				expired = nil
			}
		case len(b.cur) == 1 && maxWait > 0:
			timer.Reset(maxWait)
			expired = timer.C
		}
	}
}

// Unbatch sends every item of every slice of in, in order: the inverse of
// [Batch]. [StageStats] counts items in In and Out. Cancel and Stop behave as
// in [Buffer]. A nil in is an invalid argument.
func Unbatch[T any](p *Pipeline, in <-chan []T, opts ...StageOption) <-chan T {
	sp := spec{kind: "unbatch", workers: 1, outs: 1, allowed: optsBasic}
	return build(p, sp, opts, func(n *node[[]T, T]) {
		n.each(func(t *counters, b []T) bool {
			// The receive loop counted the slice as one item in; it
			// holds len(b) (an add of -1 when it is empty).
			t.in.Add(uint64(len(b)) - 1)
			for _, v := range b {
				if (p.cancelled() && p.gaveUp()) || !sendCounted(p, t, n.out, v) {
					return false
				}
			}
			return true
		})
	}, in).out
}
