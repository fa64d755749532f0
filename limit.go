package pipeline

// This file holds Limiter, the concurrency budget stages share through the
// Limit option, Weighted, which makes one call hold several slots, and the
// hooks by which an adaptive limiter (adaptive.go) moves its size.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Limiter is a concurrency budget that several stages (of one pipeline or of
// several) share: give each the [Limit] option, and a call of any of them
// holds one slot while it runs. A stage with k workers then runs at most k
// calls, and all the stages together never more than the limiter's size: the
// per-job cap inside a shared pool. Waiting calls are served first come,
// first served, and give up when their pipeline is cancelled.
//
// [Weighted] lets one item take more than one slot. The zero Limiter is not
// usable; make one with [NewLimiter], or with [NewAdaptiveLimiter] for one
// that finds its limit by itself. All methods are safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	size    int
	used    int
	calls   int       // calls holding slots now
	waiters list.List // of *limitWaiter, in arrival order
	bad     bool      // made with a size < 1
	why     string    // set if made with invalid adaptive settings: SetLimit cannot mend it
	adapt   sizer     // moves size, for an adaptive limiter; set once, at construction
}

type limitWaiter struct {
	n     int
	ready chan struct{} // closed when granted, or refused with err set
	err   error
	t     ticket // set when granted
}

// sizer moves an adaptive limiter's size from what its calls show (adaptive.go
// implements it). Its methods run with l.mu held.
type sizer interface {
	admit(n, used int) ticket                             // a call of n slots got them; used are now in use
	learn(l *Limiter, t ticket, now time.Time, err error) // the call admitted with t ended at now with err
	set(l *Limiter, n int)                                // SetLimit(n)
	ceiling() int                                         // the most slots the limit may reach
}

// ticket is what an adaptive limiter notes of a call's admission.
type ticket struct {
	at       time.Time     // when the call last took its slots
	held     time.Duration // how long it held them before (FlatMap's emit gave them back meanwhile)
	seq      uint64        // admission number, from 1; 0 for a fixed limiter's call
	inFlight int           // slots in use once it was admitted, its own included
	others   int           // slots others held then
}

// NewLimiter returns a limiter with n slots. n < 1 is an invalid argument:
// every stage given that limiter fails with [ErrInvalidArgument].
func NewLimiter(n int) *Limiter {
	return &Limiter{size: n, bad: n < 1}
}

// SetLimit changes the number of slots while stages run. Growing lets waiting
// calls start at once; shrinking lets running calls finish, and new calls
// start only once fewer than n are running. n < 1 is ignored (a limiter
// never drops to zero slots, which would stall every stage that uses it).
//
// On an adaptive limiter ([NewAdaptiveLimiter]) n is clamped to its min and
// max, and the limiter's rule moves on from there: SetLimit sets where it
// starts, or overrides what it found. A limiter made with invalid adaptive
// settings stays invalid.
func (l *Limiter) SetLimit(n int) {
	if l == nil || n < 1 {
		return
	}
	l.mu.Lock()
	if l.why != "" {
		l.mu.Unlock()
		return
	}
	if l.adapt != nil {
		l.adapt.set(l, n)
	} else {
		l.size = n
		l.bad = false
	}
	l.wake()
	l.mu.Unlock()
}

// Limit returns the current number of slots: for an adaptive limiter, the
// limit its rule has reached.
func (l *Limiter) Limit() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// InUse returns the number of slots held now.
func (l *Limiter) InUse() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

// InFlight returns the number of calls holding slots now. It equals
// [Limiter.InUse] unless [Weighted] calls hold more than one slot each.
func (l *Limiter) InFlight() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// Waiting returns the number of calls waiting for slots now: with a stage of
// more workers than the limit, the workers the limit holds back.
func (l *Limiter) Waiting() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters.Len()
}

// heldKey marks, in a call's context, the *heldSlot of the limiter whose slot
// the call holds through the Limit option.
type heldKey struct{}

// heldSlot is the one Limit slot a call holds. A FlatMap call gives it back
// while emit waits for room downstream (see yield) and takes it again after.
type heldSlot struct {
	l    *Limiter
	held bool
	t    ticket // what an adaptive limiter learns of the call when it ends
}

// hold takes one slot of l for a call of a stage with the Limit option.
func (l *Limiter) hold(ctx context.Context) (*heldSlot, error) {
	t, err := l.acquire(ctx, 1)
	if err != nil {
		return nil, err
	}
	return &heldSlot{l: l, held: true, t: t}, nil
}

// finish gives the slot back once the call has returned err, and lets an
// adaptive limiter learn from it; ctx is the call's context (a call ended by
// its cancellation teaches nothing). A nil h does nothing.
func (h *heldSlot) finish(ctx context.Context, err error) {
	if h == nil || !h.held {
		return
	}
	h.held = false
	h.l.releaseCall(ctx, 1, h.t, err)
}

// release gives the slot back if the call still holds it (it panicked):
// nothing is learnt from such a call.
func (h *heldSlot) release() {
	if h.held {
		h.held = false
		h.l.release(1)
	}
}

// yield gives the slot back while wait runs (a call blocked on its output is
// not using the resource the limiter guards, and a stage downstream that
// shares the limiter may need the slot to make room), then takes it again.
// It returns wait's result, or the context's cause if the slot cannot be had
// again.
func (h *heldSlot) yield(ctx context.Context, wait func() bool) error {
	if h == nil || !h.held {
		if !wait() {
			return context.Cause(ctx)
		}
		return nil
	}
	if h.t.seq != 0 {
		h.t.held += time.Since(h.t.at)
	}
	h.l.release(1)
	h.held = false
	if !wait() {
		return context.Cause(ctx)
	}
	t, err := h.l.acquire(ctx, 1)
	if err != nil {
		return err
	}
	h.t.at = t.at // the call keeps its first admission's number and in-flight count
	h.held = true
	return nil
}

// acquire takes n slots for one call, waiting while they are not free. It
// returns ctx's cause if ctx ends first, and an error if n can never fit.
// The call gives the slots back with release or releaseCall; for an adaptive
// limiter the ticket records the call's admission.
func (l *Limiter) acquire(ctx context.Context, n int) (ticket, error) {
	l.mu.Lock()
	if l.bad {
		l.mu.Unlock()
		if l.why != "" {
			return ticket{}, fmt.Errorf("%w: limiter: %s", ErrInvalidArgument, l.why)
		}
		return ticket{}, fmt.Errorf("%w: limiter: size must be >= 1", ErrInvalidArgument)
	}
	if ceil := l.ceiling(); n > ceil {
		l.mu.Unlock()
		return ticket{}, errTooHeavy(n, ceil)
	}
	if l.waiters.Len() == 0 && l.fits(n) {
		t := l.grant(n)
		l.mu.Unlock()
		return t, nil
	}
	w := &limitWaiter{n: n, ready: make(chan struct{})}
	e := l.waiters.PushBack(w)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return w.t, w.err
	case <-ctx.Done():
		l.mu.Lock()
		select {
		case <-w.ready: // granted (or refused) meanwhile: give it back
			if w.err == nil {
				l.used -= n
				l.calls--
			}
		default:
			l.waiters.Remove(e)
		}
		l.wake()
		l.mu.Unlock()
		return ticket{}, context.Cause(ctx)
	}
}

// ceiling is the most slots one call may ever take: the limit of a fixed
// limiter, the max of an adaptive one. l.mu is held.
func (l *Limiter) ceiling() int {
	if l.adapt != nil {
		return l.adapt.ceiling()
	}
	return l.size
}

// fits reports whether n more slots may be taken now. On an adaptive
// limiter, a call heavier than the current limit (but within its max) runs
// alone once no slot is held, rather than wait for a limit that may only
// grow by running calls. l.mu is held.
func (l *Limiter) fits(n int) bool {
	return l.used+n <= l.size || (l.adapt != nil && l.used == 0)
}

// grant takes n slots for one call. l.mu is held.
func (l *Limiter) grant(n int) ticket {
	l.used += n
	l.calls++
	if l.adapt == nil {
		return ticket{}
	}
	return l.adapt.admit(n, l.used)
}

// release gives back n slots, learning nothing from the call that held them.
func (l *Limiter) release(n int) {
	l.mu.Lock()
	l.used -= n
	l.calls--
	l.wake()
	l.mu.Unlock()
}

// releaseCall gives back the n slots of a call admitted with t that returned
// err, and lets an adaptive limiter learn from it, unless ctx (the call's
// context) was cancelled: a call cut short by its pipeline's end says nothing
// about the resource behind the limiter.
func (l *Limiter) releaseCall(ctx context.Context, n int, t ticket, err error) {
	var now time.Time
	learn := l.adapt != nil && t.seq != 0 && !errors.Is(ctx.Err(), context.Canceled)
	if learn {
		now = time.Now()
	}
	l.mu.Lock()
	l.used -= n
	l.calls--
	if learn {
		l.adapt.learn(l, t, now, err)
	}
	l.wake()
	l.mu.Unlock()
}

// wake grants slots to waiters in arrival order while they fit. A waiter
// that can never fit (the limit shrank below its weight) is refused with an
// error rather than left to block everyone behind it. l.mu is held.
func (l *Limiter) wake() {
	for e := l.waiters.Front(); e != nil; e = l.waiters.Front() {
		w := e.Value.(*limitWaiter)
		if ceil := l.ceiling(); w.n > ceil {
			w.err = errTooHeavy(w.n, ceil)
		} else if !l.fits(w.n) {
			return
		} else {
			w.t = l.grant(w.n)
		}
		l.waiters.Remove(e)
		close(w.ready)
	}
}

// problem says what is wrong with a limiter that has no slots.
func (l *Limiter) problem() string {
	if l.why != "" {
		return l.why
	}
	return "the limiter's size must be >= 1"
}

func errTooHeavy(n, size int) error {
	return fmt.Errorf("%w: limiter: weight %d exceeds the limit of %d slots", ErrInvalidArgument, n, size)
}

// Weighted wraps a stage function so that each call holds weight(item) slots
// of l while it runs: the weighted-semaphore pattern, for items that cost more
// than others (a big file, a large batch). It is type-checked against the
// stage's own function, and combines with any stage:
//
//	pipeline.FanOut(p, files, 8, pipeline.Weighted(mem, sizeInMB, parse))
//
// A weight below 1 counts as 1. An item whose weight exceeds l's limit (also
// one waiting when [Limiter.SetLimit] shrinks the limit below its weight)
// fails with an error wrapping [ErrInvalidArgument], since it could never
// run; [OnError] may skip it. On an adaptive limiter ([NewAdaptiveLimiter])
// the bound is its max instead, and an item heavier than the current limit
// runs alone, once no slot is held; its latency and failure teach the
// limiter as every call's do. Waiting for slots ends with the context's cause
// if the pipeline is cancelled. Weighted on a stage that also has [Limit] on
// the same limiter fails every call with [ErrInvalidArgument]: holding the
// Limit slot while waiting for the weight could deadlock. A nil l, weight or
// fn makes every call fail with [ErrInvalidArgument].
func Weighted[T, R any](l *Limiter, weight func(T) int, fn func(context.Context, T) (R, error)) func(context.Context, T) (R, error) {
	return func(ctx context.Context, v T) (R, error) {
		var zero R
		if l == nil || weight == nil || fn == nil {
			return zero, fmt.Errorf("%w: Weighted: limiter, weight and fn must be non-nil and the limiter's size >= 1", ErrInvalidArgument)
		}
		if held, _ := ctx.Value(heldKey{}).(*heldSlot); held != nil && held.l == l {
			return zero, fmt.Errorf("%w: Weighted: the stage also has Limit on the same limiter; a call holding its Limit slot while waiting for its weight could deadlock: use one or the other", ErrInvalidArgument)
		}
		n := max(weight(v), 1)
		t, err := l.acquire(ctx, n)
		if err != nil {
			return zero, err
		}
		returned := false
		defer func() {
			if !returned { // fn panicked
				l.release(n)
			}
		}()
		r, err := fn(ctx, v)
		returned = true
		l.releaseCall(ctx, n, t, err)
		return r, err
	}
}
