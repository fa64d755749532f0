package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the one engine every stage runs on: worker goroutines that
// recover panics, the call path (timeout, retry, limiter), error settling,
// and the unordered and ordered worker loops. Stages are thin adapters.

// goWorker runs body on a goroutine counted by the pipeline. A panic in body
// (that is, in a user function it calls) fails the pipeline with a
// *StageError holding a *PanicError and the item returned by item (which may
// be nil). exit always runs last, with clean = true if body returned normally.
func goWorker(p *Pipeline, s *stage, item func() any, body func(), exit func(clean bool)) {
	s.live.Add(1)
	started := p.spawn(func() {
		defer s.live.Add(-1)
		clean := false
		defer func() {
			if x := recover(); x != nil {
				var it any
				if item != nil {
					it = item()
				}
				p.fail(&StageError{Stage: s.name, Item: it, Err: panicError(x)})
			}
			exit(clean)
		}()
		body()
		clean = true
	})
	if !started {
		s.live.Add(-1)
		exit(false)
	}
}

// closer returns a function that closes out when it has been called n times:
// the last worker of a stage to return closes the stage's output.
func closer[T any](n int, outs ...chan T) func(bool) {
	var live atomic.Int32
	live.Store(int32(n))
	return func(bool) {
		if live.Add(-1) == 0 {
			for _, o := range outs {
				close(o)
			}
		}
	}
}

// caller runs a stage's function with the stage's options applied.
type caller[T, R any] struct {
	p    *Pipeline
	s    *stage
	cfg  *stageConfig
	fn   func(context.Context, T) (R, error)
	slow bool // a Timeout, Retry or Limit option is set
}

func newCaller[T, R any](p *Pipeline, s *stage, cfg *stageConfig, fn func(context.Context, T) (R, error)) *caller[T, R] {
	return &caller[T, R]{p: p, s: s, cfg: cfg, fn: fn,
		slow: cfg.timeout > 0 || cfg.attempts > 1 || cfg.limiter != nil}
}

// call runs the function on v: once, or as the stage's Retry option says,
// each attempt under its Timeout and holding a slot of its Limiter.
func (c *caller[T, R]) call(t *counters, v T) (R, error) {
	if !c.slow {
		return c.fn(c.p.ctx, v)
	}
	attempts := max(c.cfg.attempts, 1)
	for attempt := 1; ; attempt++ {
		r, err := c.attempt(v)
		if err == nil || attempt >= attempts || c.p.halted() {
			return r, err
		}
		t.retries.Add(1)
		if !c.p.sleep(c.backoff(attempt)) {
			return r, err
		}
	}
}

// attempt is one call under the stage's Timeout and Limiter; both are
// released even if the function panics.
func (c *caller[T, R]) attempt(v T) (r R, err error) {
	ctx := c.p.ctx
	var h *heldSlot
	if l := c.cfg.limiter; l != nil {
		if h, err = l.hold(ctx); err != nil {
			return r, err
		}
		defer h.release() // if fn panicked
		ctx = context.WithValue(ctx, heldKey{}, h)
	}
	if c.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.timeout)
		defer cancel()
	}
	r, err = c.fn(ctx, v)
	if err != nil && c.cfg.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) &&
		!errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (%w after %v)", err, context.DeadlineExceeded, c.cfg.timeout)
	}
	h.finish(c.p.ctx, err) // gives the slot back; an adaptive limiter learns from the call
	return r, err
}

func (c *caller[T, R]) backoff(attempt int) time.Duration {
	if c.cfg.backoff != nil {
		return c.cfg.backoff(attempt)
	}
	return DefaultBackoff(attempt)
}

// DefaultBackoff is the wait before attempt n+1 that [Retry] uses when given a
// nil backoff: exponential with full jitter, a random duration in
// [0, min(5s, 50ms·2^(n-1))).
func DefaultBackoff(attempt int) time.Duration {
	const base, ceiling = 50 * time.Millisecond, 5 * time.Second
	limit := ceiling
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 20 {
		limit = min(ceiling, base<<(attempt-1))
	}
	return rand.N(limit)
}

// sleep waits d unless the pipeline's context ends first (then it reports false).
func (p *Pipeline) sleep(d time.Duration) bool {
	if d <= 0 {
		return !p.halted()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// settle decides what a failed item means. It returns true if the stage
// should go on (the item was skipped through OnError). An error that arrives
// after the pipeline's context is done is a consequence of that, not a new
// failure.
func settle(p *Pipeline, s *stage, cfg *stageConfig, t *counters, item any, err error) bool {
	t.errors.Add(1)
	if p.halted() {
		p.noteCancel()
		return false
	}
	se := &StageError{Stage: s.name, Item: item, Err: err}
	if cfg.onError != nil {
		if herr := cfg.onError(se); herr != nil {
			p.fail(herr)
			return false
		}
		discard(item, se)
		return true
	}
	p.fail(se)
	return false
}

// step handles one item for runWorkers: it returns the value to send, whether
// to send it, and whether the worker should go on.
type step[T, R any] func(v T) (res R, send bool, ok bool)

// runWorkers starts workers goroutines that share the input: each takes an
// item, runs its step (made by mk with the worker's own counters) and sends
// the result on out (out is nil for a sink). With calls, each item is a call
// of a user function, counted in Busy while it runs. The last worker to
// return closes out. Items arrive in no particular order.
func runWorkers[T, R any](p *Pipeline, s *stage, in inlet[T], out chan R, workers int, calls bool, mk func(t *counters) step[T, R]) {
	var done func(bool)
	if out != nil {
		done = closer(workers, out)
	} else {
		done = func(bool) {}
	}
	p.describe(s, func(s *stage) { s.calls = calls })
	for i := 0; i < workers; i++ {
		t := &s.ctr[i]
		st := mk(t)
		var cur T
		goWorker(p, s, func() any { return cur }, func() {
			eachItem(p, t, in, calls, func(v T) bool {
				cur = v
				res, snd, ok := st(v)
				if !ok || !snd {
					return ok
				}
				if !send(p, out, res) {
					return false
				}
				t.out.Add(1)
				return true
			})
		}, done)
	}
}

// eachItem is the receive loop of every one-goroutine-per-input stage: it
// takes the items of in until it ends, counts each one taken (as the start
// of a call of the user's function, if calls) and hands it to handle, which
// returns false to stop. It stops, and records why, once the pipeline's
// context is done.
func eachItem[T any](p *Pipeline, t *counters, in inlet[T], calls bool, handle func(v T) bool) {
	for {
		v, ok := in.next(p)
		if !ok {
			return
		}
		if p.halted() {
			p.noteCancel()
			return
		}
		t.in.Add(1)
		goOn := handle(v)
		if calls {
			t.called.Add(1)
		}
		if !goOn {
			return
		}
	}
}

// callStep adapts a stage function with its options to a step: an error is
// settled (skipped or fatal) and the result sent otherwise.
func callStep[T, R any](c *caller[T, R]) func(*counters) step[T, R] {
	return func(t *counters) step[T, R] {
		return func(v T) (R, bool, bool) {
			r, err := c.call(t, v)
			if err != nil {
				return r, false, settle(c.p, c.s, c.cfg, t, v, err)
			}
			return r, true, true
		}
	}
}

// ---- the ordered engine ----

// reorder holds finished results until every earlier one has been sent. It is
// a fixed ring: memory does not grow with the input, and a worker whose
// result is too far ahead waits for room. Whoever stores the next result to be
// sent becomes the flusher and sends every consecutive ready result.
type reorder[R any] struct {
	mu       sync.Mutex
	room     sync.Cond
	ring     []slot[R]
	nextOut  uint64
	flushing bool
	aborted  bool
}

type slot[R any] struct {
	v     R
	state uint8 // 0 empty, 1 value, 2 skipped
}

// put stores the result of item seq and, if it is the next to go out, sends
// it and every consecutive ready result after it. It reports false if the
// stage must stop (cancelled or aborted by another worker).
func (o *reorder[R]) put(p *Pipeline, t *counters, out chan R, seq uint64, v R, state uint8) bool {
	o.mu.Lock()
	for seq-o.nextOut >= uint64(len(o.ring)) && !o.aborted {
		o.room.Wait()
	}
	if o.aborted {
		o.mu.Unlock()
		return false
	}
	n := uint64(len(o.ring))
	o.ring[seq%n] = slot[R]{v: v, state: state}
	if o.flushing || seq != o.nextOut {
		o.mu.Unlock()
		return true
	}
	o.flushing = true
	var zero R
	for {
		sl := &o.ring[o.nextOut%n]
		if sl.state == 0 {
			break
		}
		r, st := sl.v, sl.state
		sl.v, sl.state = zero, 0
		o.nextOut++
		o.room.Broadcast()
		if st != 1 {
			continue
		}
		o.mu.Unlock()
		sent := send(p, out, r)
		o.mu.Lock()
		if !sent {
			o.flushing = false
			o.aborted = true
			o.room.Broadcast()
			o.mu.Unlock()
			return false
		}
		t.out.Add(1)
	}
	o.flushing = false
	o.mu.Unlock()
	return true
}

func (o *reorder[R]) abort() {
	o.mu.Lock()
	o.aborted = true
	o.room.Broadcast()
	o.mu.Unlock()
}

// runOrdered is runWorkers that keeps input order: workers take items in turn
// (numbering them as they do), run concurrently, and results leave in input
// order. At most workers calls run at once and at most window finished results
// wait for an earlier one.
func runOrdered[T, R any](p *Pipeline, s *stage, in inlet[T], out chan R, workers, window int, c *caller[T, R]) {
	p.describe(s, func(s *stage) { s.calls = true })
	o := &reorder[R]{ring: make([]slot[R], window)}
	o.room.L = &o.mu
	var inMu sync.Mutex
	var nextIn uint64
	closeOut := closer(workers, out)
	for i := 0; i < workers; i++ {
		t := &s.ctr[i]
		var cur T
		goWorker(p, s, func() any { return cur }, func() {
			for {
				inMu.Lock()
				v, ok := in.next(p)
				seq := nextIn
				nextIn++
				inMu.Unlock()
				if !ok {
					return
				}
				if p.halted() {
					p.noteCancel()
					o.abort()
					return
				}
				t.in.Add(1)
				cur = v
				r, err := c.call(t, v)
				t.called.Add(1)
				state := uint8(1)
				if err != nil {
					if !settle(p, s, c.cfg, t, v, err) {
						o.abort()
						return
					}
					state = 2
				}
				if !o.put(p, t, out, seq, r, state) {
					return
				}
			}
		}, func(clean bool) {
			if !clean {
				o.abort()
			}
			closeOut(clean)
		})
	}
}
