package pipeline

// This file holds the stages that shape the flow between a producer and a
// slower consumer: Buffer (a queue that blocks), DropOnFull (a queue that
// sheds) and Throttle (a rate limit).

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// Buffer passes every item of in on, in order, through a queue of n items: the
// upstream runs up to n items ahead of a slow downstream before it blocks
// (backpressure). On cancel it stops and closes its output; on
// [Pipeline.Stop] it goes on until its input closes. n < 1 or a nil in is an
// invalid argument. It accepts [Name], and [BufferSize] if it says n.
func Buffer[T any](p *Pipeline, in <-chan T, n int, opts ...StageOption) <-chan T {
	return build(p, queueSpec("buffer", n, opts), queueOpts(n, opts), func(nd *node[T, T]) {
		nd.each(func(t *counters, v T) bool { return sendCounted(p, t, nd.out, v) })
	}, in).out
}

// DropOnFull passes items of in on, in order, through a queue of n items, and
// never blocks its upstream: when the queue is full, the item is dropped
// (load shedding) and counted in [StageStats].Dropped, so In = Out + Dropped;
// a [Discarder] item is told [ErrDropped].
// Dropping is deliberate: it does not make [Pipeline.Wait] fail. Cancel and
// Stop behave as in [Buffer]. n < 1 or a nil in is an invalid argument. It
// accepts [Name], and [BufferSize] if it says n.
func DropOnFull[T any](p *Pipeline, in <-chan T, n int, opts ...StageOption) <-chan T {
	return build(p, queueSpec("droponfull", n, opts), queueOpts(n, opts), func(nd *node[T, T]) {
		tell := discarder[T]()
		nd.each(func(t *counters, v T) bool {
			if p.track != nil { // under a Checkpoint: v goes with its ticket
				if trySendTagged(p, t, nd.out, v) {
					t.out.Add(1)
				} else if !p.cancelled() {
					dropItem(t, v, tell)
				}
				return true
			}
			select {
			case nd.out <- v:
				t.out.Add(1)
			default:
				dropItem(t, v, tell)
			}
			return true
		})
	}, in).out
}

// dropItem counts v dropped by DropOnFull on t, and tells it so if tell.
func dropItem[T any](t *counters, v T, tell bool) {
	t.dropped.Add(1)
	if tell {
		discard(v, ErrDropped)
	}
}

// queueOpts is opts with BufferSize(n) last, for a stage whose queue is its
// output (the caller's slice is not written to).
func queueOpts(n int, opts []StageOption) []StageOption {
	if n < 1 {
		return opts
	}
	return append(opts[:len(opts):len(opts)], BufferSize(n))
}

// queueSpec describes a one-goroutine stage whose output is a queue of n
// items; a BufferSize among opts must agree with n.
func queueSpec(kind string, n int, opts []StageOption) spec {
	bad := ""
	if n < 1 {
		bad = "n must be >= 1"
	} else if cfg := configure(opts); cfg.used&optBuffer != 0 && cfg.buf != n {
		bad = fmt.Sprintf("BufferSize(%d) contradicts the queue size n = %d", cfg.buf, n)
	}
	return spec{kind: kind, workers: 1, outs: 1, allowed: optsBasic, bad: bad}
}

// Throttle passes items of in on, in order, at a limited rate: up to burst
// items at once, then one per every on average (a token bucket from
// golang.org/x/time/rate). Throttle(p, in, d, 1) is the classic
// ticker-limited stage. Waiting for a token ends when the pipeline is
// cancelled; on [Pipeline.Stop] the items still coming keep the rate. No
// timer or goroutine is left once it returns. every <= 0, burst < 1 or a nil
// in is an invalid argument.
func Throttle[T any](p *Pipeline, in <-chan T, every time.Duration, burst int, opts ...StageOption) <-chan T {
	bad := ""
	switch {
	case every <= 0:
		bad = "every = " + every.String() + ", must be > 0"
	case burst < 1:
		bad = "burst must be >= 1"
	}
	sp := spec{kind: "throttle", workers: 1, outs: 1, allowed: optsBasic, bad: bad}
	return build(p, sp, opts, func(n *node[T, T]) {
		lim := rate.NewLimiter(rate.Every(every), burst)
		n.each(func(t *counters, v T) bool {
			r := lim.Reserve() // never fails: burst >= 1 and one token per item
			if d := r.Delay(); d > 0 && !p.sleep(d) {
				r.Cancel()
				return false
			}
			return sendCounted(p, t, n.out, v)
		})
	}, in).out
}
