package pipeline

// This file holds Limiter, the concurrency budget stages share through the
// Limit option, and the hooks by which an adaptive limiter (adaptive.go)
// moves its size. Weighted is in weighted.go.

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
	return n <= l.size-l.used || (l.adapt != nil && l.used == 0) // no overflow: n <= size - used
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
