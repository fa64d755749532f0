package pipeline

// This file holds the adaptive Limiter: NewAdaptiveLimiter, the Algorithm a
// limiter's rule comes from, the sizer that feeds the rule what each call
// showed and records the Adjustments it makes. The rules are in aimd.go and
// vegas.go; admission and release are in limit.go.

import (
	"errors"
	"fmt"
	"time"
)

// NewAdaptiveLimiter returns a [Limiter] that finds its own limit between
// minLimit and maxLimit, by alg's rule ([AIMD] or [Vegas]), from what it
// observes of every call it admits: how long the call held its slots, and
// whether it failed. It is a *Limiter like any other: give it to stages with
// [Limit] (of one pipeline or several), or use it with [Weighted];
// [Limiter.Limit] is its current limit, [Limiter.InFlight] and
// [Limiter.Waiting] the calls holding and waiting for slots, and
// [Limiter.Adjustments] its recent changes. It starts at minLimit and probes
// upward; [Limiter.SetLimit] starts it elsewhere.
//
// The pattern to use: give the stage maxLimit workers and Limit(l). At most
// the current limit of its calls run; the workers above it wait for a slot,
// blocked, costing no CPU, and start as soon as the limit grows:
//
//	db := pipeline.NewAdaptiveLimiter(1, 64, pipeline.Vegas{})
//	rows := pipeline.FanOut(p, ids, 64, query, pipeline.Limit(db))
//
// When the limit shrinks, calls already running finish; new ones start once
// fewer than the new limit are running.
//
// What it learns from: a call's latency is the time it held its slots (for
// [FlatMap], not counting the time emit waited for room downstream); each
// attempt under [Retry] is a call of its own. A call failed if it returned
// an error (a [Timeout] makes one wrapping context.DeadlineExceeded) that the
// algorithm counts (see its Failure field). A call that ended because its
// context was cancelled, the pipeline's end, teaches nothing, nor does one
// that panicked.
//
// minLimit < 1, maxLimit < minLimit, a nil alg or invalid settings of alg
// make a limiter that every stage given it (and every Weighted call on it)
// fails with an error wrapping [ErrInvalidArgument] saying why.
func NewAdaptiveLimiter(minLimit, maxLimit int, alg Algorithm) *Limiter {
	what := fmt.Sprintf("NewAdaptiveLimiter(%d, %d, %T)", minLimit, maxLimit, alg)
	var r rule
	var err error
	switch {
	case minLimit < 1:
		err = errors.New("min must be >= 1")
	case maxLimit < minLimit:
		err = errors.New("max must be >= min")
	case alg == nil:
		err = errors.New("nil algorithm")
	default:
		r, err = alg.rule()
	}
	if err != nil {
		return &Limiter{bad: true, why: what + ": " + err.Error()}
	}
	a := &adaptive{min: minLimit, max: maxLimit, limit: float64(minLimit), rule: r}
	return &Limiter{size: minLimit, adapt: a}
}

// Algorithm is the rule by which an adaptive limiter ([NewAdaptiveLimiter])
// moves its limit: [AIMD] or [Vegas]. Each limiter keeps its own state, so
// one Algorithm value may configure many limiters.
type Algorithm interface {
	// rule checks the settings and returns a fresh state of the rule.
	rule() (rule, error)
}

// rule is the state of one limiter's algorithm. next is given the current
// limit and what one call showed, and returns the new limit (the limiter
// clamps it to its bounds) with the reason and the latency that decided it.
// set tells it the limit was set from outside. The limiter's lock is held.
type rule interface {
	next(limit float64, s sample) (newLimit float64, reason string, latency time.Duration)
	set(limit float64)
}

// sample is what an adaptive limiter observed of one call.
type sample struct {
	now      time.Time
	latency  time.Duration // time the call held its slots
	err      error         // what the call returned
	inFlight int           // slots in use once the call was admitted, its own included
	others   int           // slots others held when the call was admitted
	seq      uint64        // the call's admission number, from 1
	next     uint64        // the admission number the next call will get
	min      int           // the limiter's min
}

// recentAdjustments is how many adjustments a limiter remembers.
const recentAdjustments = 32

// Adjustment is one change of an adaptive limiter's limit, as
// [Limiter.Adjustments] reports it.
type Adjustment struct {
	Time     time.Time
	From, To int
	// Reason says which part of the rule moved the limit: "increase" (good
	// calls), "failure" (a failed call, or a round with one), "latency" (an
	// AIMD call slower than its Threshold), "queue" (a Vegas round whose
	// estimated queue was too long), "undo" (a Vegas round right after a
	// "queue" drop that shows no queue at all), "probe" and "probed" (Vegas
	// lowering the limit to re-measure the no-load latency, and restoring
	// it), "set" ([Limiter.SetLimit]).
	Reason string
	// Latency is what decided it: the call's latency (AIMD) or the round's
	// mean latency (Vegas), the new no-load latency for "probed"; 0 for
	// "set", "probe" and a Vegas "failure".
	Latency time.Duration
}

// Adjustments returns the recent changes of an adaptive limiter's limit, up
// to the last 32, oldest first. It returns nil for a limiter made with
// [NewLimiter].
func (l *Limiter) Adjustments() []Adjustment {
	if l == nil {
		return nil
	}
	a, ok := l.adapt.(*adaptive)
	if !ok {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return a.recent()
}

// adaptive is the sizer of an adaptive Limiter. Every field is guarded by the
// Limiter's lock.
type adaptive struct {
	min, max int
	limit    float64 // the rule's limit; the Limiter's size is its integer part
	admitted uint64  // calls admitted so far
	rule     rule
	log      [recentAdjustments]Adjustment
	logged   int // adjustments so far
}

// admit numbers a call of n slots admitted with used slots now in use.
func (a *adaptive) admit(n, used int) ticket {
	a.admitted++
	return ticket{at: time.Now(), seq: a.admitted, inFlight: used, others: used - n}
}

// learn feeds the rule what the call of ticket t showed: it ended at now
// with err.
func (a *adaptive) learn(l *Limiter, t ticket, now time.Time, err error) {
	s := sample{now: now, latency: t.held + now.Sub(t.at), err: err, inFlight: t.inFlight,
		others: t.others, seq: t.seq, next: a.admitted + 1, min: a.min}
	limit, reason, latency := a.rule.next(a.limit, s)
	a.move(l, limit, reason, latency, now)
}

func (a *adaptive) ceiling() int { return a.max }

// set is SetLimit on an adaptive limiter.
func (a *adaptive) set(l *Limiter, n int) {
	n = min(max(n, a.min), a.max)
	a.rule.set(float64(n))
	a.move(l, float64(n), "set", 0, time.Now())
}

// move sets the limit, clamped to the bounds, and records the change if the
// number of slots changed.
func (a *adaptive) move(l *Limiter, limit float64, reason string, latency time.Duration, now time.Time) {
	limit = min(max(limit, float64(a.min)), float64(a.max))
	a.limit = limit
	if n := int(limit); n != l.size {
		a.log[a.logged%recentAdjustments] = Adjustment{Time: now, From: l.size, To: n, Reason: reason, Latency: latency}
		a.logged++
		l.size = n
	}
}

func (a *adaptive) recent() []Adjustment {
	n := min(a.logged, recentAdjustments)
	out := make([]Adjustment, 0, n)
	for i := a.logged - n; i < a.logged; i++ {
		out = append(out, a.log[i%recentAdjustments])
	}
	return out
}

// failed reports whether a call's error counts as a failure under the
// algorithm's Failure function.
func failed(failure func(error) bool, err error) bool {
	return err != nil && (failure == nil || failure(err))
}
