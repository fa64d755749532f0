package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// This file is the adaptive Limiter: a *Limiter whose limit a rule moves from
// what it observes of the calls it admits. Admission and release live in
// limit.go; the rules (AIMD, Vegas) and the record of adjustments live here.

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

// ticket is an adaptive limiter's record of one call's admission.
type ticket struct {
	at       time.Time     // when the call last took its slots
	held     time.Duration // time it held them before that (FlatMap's emit gave them back)
	seq      uint64        // admission number; 0 for a fixed limiter's call
	inFlight int
	others   int
}

func (t ticket) admitted() bool { return t.seq != 0 }

// pause notes that the call gives its slots back for a while.
func (t ticket) pause() ticket {
	if t.admitted() {
		t.held += time.Since(t.at)
	}
	return t
}

// resume notes that the call took slots again, as n records; the call keeps
// its first admission's number and in-flight count.
func (t ticket) resume(n ticket) ticket {
	t.at = n.at
	return t
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
	// estimated queue was too long), "probe" and "probed" (Vegas lowering
	// the limit to re-measure the no-load latency, and restoring it), "set"
	// ([Limiter.SetLimit]).
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
	if l == nil || l.adapt == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.adapt.recent()
}

// problem says what is wrong with a limiter that has no slots.
func (l *Limiter) problem() string {
	if l.why != "" {
		return l.why
	}
	return "the limiter's size must be >= 1"
}

// adaptive is the part of a Limiter that moves its size. Every field is
// guarded by the Limiter's lock.
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

// ---- AIMD ----

// AIMD is the loss-based rule of TCP's congestion avoidance, additive
// increase and multiplicative decrease, as Netflix's concurrency-limits
// applies it to calls (its AIMDLimit). After each call:
//
//   - a call that failed, or took longer than Threshold (if set), multiplies
//     the limit by Backoff, lowering it by at least one slot; at most once
//     per round: only a call admitted after the last decrease can decrease
//     it again, so the calls already under way when trouble began count as
//     one signal, not as many;
//   - any other call adds 1/limit, so a limit's worth of good calls (about
//     one round trip of the downstream) adds one slot; but only if the call
//     was admitted with at least half the limit in use, so that a limiter
//     that is not what holds the stage back does not grow without evidence.
//
// Without a Threshold only failures bring the limit down: it grows until the
// downstream fails (errors, or timeouts from [Timeout]), then backs off.
// With one it keeps the latency near Threshold. AIMD needs no estimate of
// the downstream's latency, reacts to the first failure, and suits a
// downstream whose latency varies too much to read a queue from it; its
// limit saw-tooths between Backoff×L and L.
type AIMD struct {
	// Threshold is the latency above which a call counts as a failure; 0
	// counts failures only.
	Threshold time.Duration
	// Backoff is the factor of a decrease, in (0, 1); 0 means 0.9.
	Backoff float64
	// Failure reports whether a call's error is a sign of overload; nil
	// counts every error. Errors it rejects count as good calls.
	Failure func(error) bool
}

func (a AIMD) rule() (rule, error) {
	if a.Backoff == 0 {
		a.Backoff = 0.9
	}
	switch {
	case a.Threshold < 0:
		return nil, errors.New("AIMD: Threshold must be >= 0")
	case !(a.Backoff > 0 && a.Backoff < 1):
		return nil, errors.New("AIMD: Backoff must be in (0, 1)")
	}
	return &aimdRule{cfg: a}, nil
}

type aimdRule struct {
	cfg AIMD
	cut uint64 // admission number from which a call may decrease the limit again
}

func (r *aimdRule) next(limit float64, s sample) (float64, string, time.Duration) {
	reason := ""
	switch {
	case failed(r.cfg.Failure, s.err):
		reason = "failure"
	case r.cfg.Threshold > 0 && s.latency > r.cfg.Threshold:
		reason = "latency"
	}
	if reason != "" {
		if s.seq < r.cut {
			return limit, "", 0 // admitted before the last decrease
		}
		r.cut = s.next
		return min(limit*r.cfg.Backoff, limit-1), reason, s.latency
	}
	if float64(s.inFlight) < limit/2 {
		return limit, "", 0
	}
	return limit + 1/limit, "increase", s.latency
}

func (r *aimdRule) set(float64) {}

// ---- Vegas ----

// Vegas is the delay-based rule of TCP Vegas, as Netflix's
// concurrency-limits applies it to calls (its VegasLimit): it reads how many
// calls wait in a queue at the downstream from how much slower calls are
// than the downstream's latency without load, and keeps that queue short.
//
// It decides once per round, when max(limit, 8) calls have completed,
// counting only calls admitted since the limit last went down or was
// restored after a probe (earlier ones tell of the old limit). With
// rtt the round's mean latency (of the calls that did not fail) and minRTT
// the no-load latency, the estimated queue is
//
//	queue = limit × (1 − minRTT/rtt)
//
// and then:
//
//   - a round with a failed call: the limit is multiplied by Backoff;
//   - queue > max(Beta×limit, 1): the limit drops to what the downstream
//     serves without a queue, limit×minRTT/rtt, plus a queue in the middle
//     of the [Alpha, Beta] band, but to no less than half; Netflix's rule
//     lowers it by a step per round instead, which takes many rounds after
//     the downstream loses capacity;
//   - queue < max(Alpha×limit, 0.5): the limit grows by half the band,
//     (Beta−Alpha)/2×limit, at least one, if a call of the round was
//     admitted with at least half the limit in use (as for [AIMD]);
//   - otherwise it holds.
//
// Alpha and Beta are fractions of the limit (Netflix's are numbers of
// calls): with the defaults, the limit grows while calls are less than 11%
// slower than minRTT and drops once they are more than 33% slower.
//
// minRTT is measured, not guessed from the fastest calls (whose luck would
// read as a queue ever after): at the start, after [Limiter.SetLimit], and
// every ProbeEvery rounds, the limit is halved until a round's worth of
// calls admitted under the halved limit have completed; their mean latency
// is minRTT, and the limit returns to where it was (times Backoff if one of
// them failed). At min, where halving is impossible, a round that does not
// grow the limit is followed by a probe. So a downstream whose no-load
// latency changes for good is re-learnt within ProbeEvery rounds, and a
// limit it pushed down to min recovers; a probe costs about one round at
// half the limit. Vegas keeps latency near
// the downstream's best and needs no threshold, but it needs latency to grow
// with load.
type Vegas struct {
	// Alpha and Beta bound the tolerated queue, as fractions of the limit:
	// 0 < Alpha < Beta < 1. Zero values mean 0.1 and 0.25.
	Alpha, Beta float64
	// Backoff is the factor of a decrease after a failure, in (0, 1); 0
	// means 0.7.
	Backoff float64
	// ProbeEvery is the number of rounds between two measurements of the
	// no-load latency; 0 means 100, a negative value measures it only at
	// the start and after SetLimit.
	ProbeEvery int
	// Failure reports whether a call's error is a sign of overload; nil
	// counts every error. Errors it rejects count as good calls.
	Failure func(error) bool
}

func (v Vegas) rule() (rule, error) {
	if v.Alpha == 0 {
		v.Alpha = 0.1
	}
	if v.Beta == 0 {
		v.Beta = 0.25
	}
	if v.Backoff == 0 {
		v.Backoff = 0.7
	}
	if v.ProbeEvery == 0 {
		v.ProbeEvery = 100
	}
	switch {
	case !(v.Alpha > 0 && v.Alpha < v.Beta && v.Beta < 1):
		return nil, errors.New("Vegas: Alpha and Beta must satisfy 0 < Alpha < Beta < 1")
	case !(v.Backoff > 0 && v.Backoff < 1):
		return nil, errors.New("Vegas: Backoff must be in (0, 1)")
	}
	return &vegasRule{cfg: v}, nil
}

// minRound is the fewest calls a Vegas round has, so that the mean latency
// of a round at a small limit is not one call's.
const minRound = 8

func roundSize(limit float64) int { return max(minRound, int(limit)) }

type vegasRule struct {
	cfg    Vegas
	minRTT time.Duration // the no-load latency; 0 until first measured

	// the round under way
	cut         uint64 // calls admitted before this admission number do not count
	calls, good int
	sum         time.Duration
	fails       bool
	busy        bool // a call was admitted with at least half the limit in use

	// measuring the no-load latency
	probeIn    int // rounds until the next probe; 0 starts one with the next call
	probing    bool
	saved      float64 // the limit to return to
	probeLimit float64
	probeSum   time.Duration // latencies of the good calls admitted under probeLimit
	probeGood  int
	probeN     int // calls admitted under probeLimit, completed
}

func (r *vegasRule) next(limit float64, s sample) (float64, string, time.Duration) {
	bad := failed(r.cfg.Failure, s.err)
	if r.probing {
		return r.probe(limit, s, bad)
	}
	if r.probeIn == 0 {
		r.probing = true
		r.saved = limit
		r.probeLimit = max(limit/2, float64(s.min))
		r.probeSum, r.probeGood, r.probeN = 0, 0, 0
		return r.probeLimit, "probe", 0
	}
	if s.seq < r.cut {
		return limit, "", 0 // admitted before the last decrease: it tells of the old limit
	}
	r.calls++
	if bad {
		r.fails = true
	} else {
		r.good++
		r.sum += s.latency
	}
	if float64(s.inFlight) >= limit/2 {
		r.busy = true
	}
	if r.calls < roundSize(limit) {
		return limit, "", 0
	}
	defer r.newRound()
	if r.fails {
		r.cut = s.next
		return limit * r.cfg.Backoff, "failure", 0
	}
	if r.good == 0 {
		return limit, "", 0
	}
	if r.minRTT == 0 { // every probe call failed so far: measure again
		r.probeIn = 0
		return limit, "", 0
	}
	rtt := r.sum / time.Duration(r.good)
	ratio := min(float64(r.minRTT)/float64(rtt), 1) // no-load latency over now's
	queue := limit * (1 - ratio)
	switch {
	case queue > max(r.cfg.Beta*limit, 1):
		r.cut = s.next
		target := limit * ratio / (1 - (r.cfg.Alpha+r.cfg.Beta)/2)
		return max(target, limit/2), "queue", rtt
	case queue < max(r.cfg.Alpha*limit, 0.5) && r.busy:
		return limit + max(1, (r.cfg.Beta-r.cfg.Alpha)/2*limit), "increase", rtt
	}
	if int(limit) <= s.min {
		r.probeIn = 0 // at min a probe costs nothing: measure again rather than hold
	}
	return limit, "", 0
}

// probe handles a call while the limit is lowered to measure minRTT: only
// calls admitted with fewer than the lowered limit of slots held by others
// count.
func (r *vegasRule) probe(limit float64, s sample, bad bool) (float64, string, time.Duration) {
	if float64(s.others) < r.probeLimit {
		r.probeN++
		if !bad {
			r.probeSum += s.latency
			r.probeGood++
		}
	}
	if r.probeN < roundSize(r.probeLimit) {
		return limit, "", 0
	}
	r.probing = false
	if r.probeGood > 0 {
		r.minRTT = r.probeSum / time.Duration(r.probeGood)
	}
	r.probeIn = r.cfg.ProbeEvery
	r.newRound()
	r.cut = s.next
	if r.probeGood < r.probeN { // it failed even at half the limit
		return r.saved * r.cfg.Backoff, "failure", 0
	}
	return r.saved, "probed", r.minRTT
}

func (r *vegasRule) newRound() {
	r.calls, r.good, r.sum, r.fails, r.busy = 0, 0, 0, false, false
	if r.probeIn > 0 {
		r.probeIn--
	}
}

func (r *vegasRule) set(float64) {
	r.probing = false
	r.calls, r.good, r.sum, r.fails, r.busy = 0, 0, 0, false, false
	r.probeIn = 0
}
