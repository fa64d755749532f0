package pipeline

// This file holds Limiter, the concurrency budget stages share through the
// Limit option, and Weighted, which makes one call hold several slots.

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// Limiter is a concurrency budget that several stages (of one pipeline or of
// several) share: give each the [Limit] option, and a call of any of them
// holds one slot while it runs. A stage with k workers then runs at most k
// calls, and all the stages together never more than the limiter's size: the
// per-job cap inside a shared pool. Waiting calls are served first come,
// first served, and give up when their pipeline is cancelled.
//
// [Weighted] lets one item take more than one slot. The zero Limiter is not
// usable; make one with [NewLimiter]. All methods are safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	size    int
	used    int
	waiters list.List // of *limitWaiter, in arrival order
	bad     bool      // made with a size < 1
}

type limitWaiter struct {
	n     int
	ready chan struct{} // closed when granted, or refused with err set
	err   error
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
func (l *Limiter) SetLimit(n int) {
	if l == nil || n < 1 {
		return
	}
	l.mu.Lock()
	l.size = n
	l.bad = false
	l.wake()
	l.mu.Unlock()
}

// Limit returns the current number of slots.
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

// waiting returns the number of calls waiting for slots.
func (l *Limiter) waiting() int {
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
	h.l.release(1)
	h.held = false
	if !wait() {
		return context.Cause(ctx)
	}
	if err := h.l.acquire(ctx, 1); err != nil {
		return err
	}
	h.held = true
	return nil
}

// acquire takes n slots, waiting while they are not free. It returns ctx's
// cause if ctx ends first, and an error if n can never fit.
func (l *Limiter) acquire(ctx context.Context, n int) error {
	l.mu.Lock()
	if l.bad {
		l.mu.Unlock()
		return fmt.Errorf("%w: limiter: size must be >= 1", ErrInvalidArgument)
	}
	if n > l.size {
		err := errTooHeavy(n, l.size)
		l.mu.Unlock()
		return err
	}
	if l.waiters.Len() == 0 && n <= l.size-l.used {
		l.used += n
		l.mu.Unlock()
		return nil
	}
	w := &limitWaiter{n: n, ready: make(chan struct{})}
	e := l.waiters.PushBack(w)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
		l.mu.Lock()
		select {
		case <-w.ready: // granted (or refused) meanwhile: give it back
			if w.err == nil {
				l.used -= n
			}
		default:
			l.waiters.Remove(e)
		}
		l.wake()
		l.mu.Unlock()
		return context.Cause(ctx)
	}
}

// release gives back n slots.
func (l *Limiter) release(n int) {
	l.mu.Lock()
	l.used -= n
	l.wake()
	l.mu.Unlock()
}

// wake grants slots to waiters in arrival order while they fit. A waiter
// that can never fit (the limit shrank below its weight) is refused with an
// error rather than left to block everyone behind it. l.mu is held.
func (l *Limiter) wake() {
	for e := l.waiters.Front(); e != nil; e = l.waiters.Front() {
		w := e.Value.(*limitWaiter)
		if w.n > l.size {
			w.err = errTooHeavy(w.n, l.size)
		} else if w.n > l.size-l.used {
			return
		} else {
			l.used += w.n
		}
		l.waiters.Remove(e)
		close(w.ready)
	}
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
// run; [OnError] may skip it. Waiting for slots ends with the context's cause
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
		if err := l.acquire(ctx, n); err != nil {
			return zero, err
		}
		defer l.release(n)
		return fn(ctx, v)
	}
}
