package pipeline

import (
	"time"

	"golang.org/x/time/rate"
)

// Buffer passes every item of in on, in order, through a queue of n items: the
// upstream runs up to n items ahead of a slow downstream before it blocks
// (backpressure). On cancel it stops and closes its output; on
// [Pipeline.Stop] it goes on until its input closes. n < 1 or a nil in is an
// invalid argument.
func Buffer[T any](p *Pipeline, in <-chan T, n int) <-chan T {
	return forward(p, "buffer", in, n, nil, func(out chan T, t *counters, v T) bool {
		if !send(p, out, v) {
			return false
		}
		t.out.Add(1)
		return true
	})
}

// DropOnFull passes items of in on, in order, through a queue of n items, and
// never blocks its upstream: when the queue is full, the item is dropped
// (load shedding) and counted in [StageStats].Dropped, so In = Out + Dropped;
// a [Discarder] item is told [ErrDropped].
// Dropping is deliberate: it does not make [Pipeline.Wait] fail. Cancel and
// Stop behave as in [Buffer]. n < 1 or a nil in is an invalid argument.
func DropOnFull[T any](p *Pipeline, in <-chan T, n int, opts ...StageOption) <-chan T {
	tell := discarder[T]()
	return forward(p, "droponfull", in, n, opts, func(out chan T, t *counters, v T) bool {
		select {
		case out <- v:
			t.out.Add(1)
		default:
			t.dropped.Add(1)
			if tell {
				discard(v, ErrDropped)
			}
		}
		return true
	})
}

// Throttle passes items of in on, in order, at a limited rate: up to burst
// items at once, then one per every on average (a token bucket from
// golang.org/x/time/rate). Throttle(p, in, d, 1) is the classic
// ticker-limited stage. Waiting for a token ends when the pipeline is
// cancelled; on [Pipeline.Stop] the items still coming keep the rate. No
// timer or goroutine is left once it returns. every <= 0, burst < 1 or a nil
// in is an invalid argument.
func Throttle[T any](p *Pipeline, in <-chan T, every time.Duration, burst int, opts ...StageOption) <-chan T {
	var lim *rate.Limiter
	if every > 0 && burst >= 1 {
		lim = rate.NewLimiter(rate.Every(every), burst)
	}
	return forwardChecked(p, "throttle", in, opts, func() string {
		switch {
		case every <= 0:
			return "every = " + every.String() + ", must be > 0"
		case burst < 1:
			return "burst must be >= 1"
		}
		return ""
	}, func(out chan T, t *counters, v T) bool {
		r := lim.Reserve() // never fails: burst >= 1 and one token per item
		if d := r.Delay(); d > 0 {
			if !p.sleep(d) {
				r.Cancel()
				p.noteCancel()
				return false
			}
		}
		if !send(p, out, v) {
			return false
		}
		t.out.Add(1)
		return true
	})
}

// forward runs a one-goroutine stage whose output queue holds n items and
// whose handle passes one item on.
func forward[T any](p *Pipeline, kind string, in <-chan T, n int, opts []StageOption, handle func(out chan T, t *counters, v T) bool) <-chan T {
	if n >= 1 {
		opts = append(opts, BufferSize(n))
	}
	return forwardChecked(p, kind, in, opts, func() string {
		if n < 1 {
			return "n must be >= 1"
		}
		return ""
	}, handle)
}

// forwardChecked is forward with a custom argument check (empty: fine).
func forwardChecked[T any](p *Pipeline, kind string, in <-chan T, opts []StageOption, check func() string, handle func(out chan T, t *counters, v T) bool) <-chan T {
	s, _, out, src, ok := transform[T, T](p, kind, in, 1, check(), optsBasic, opts)
	if !ok {
		return out
	}
	t := &s.ctr[0]
	goWorker(p, s, nil, func() {
		eachItem(p, t, src, false, func(v T) bool { return handle(out, t, v) })
	}, closer(1, out))
	return out
}
