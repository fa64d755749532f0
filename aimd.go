package pipeline

// This file holds AIMD, the loss-based rule of an adaptive limiter: additive
// increase, multiplicative decrease.

import (
	"errors"
	"time"
)

// AIMD is the loss-based rule of TCP's congestion avoidance, additive
// increase and multiplicative decrease, as Netflix's concurrency-limits
// applies it to calls (its AIMDLimit). After each call:
//
//   - a call that failed, or took longer than Threshold (if set), lowers the
//     limit by at least one slot, at most once per round: only a call
//     admitted after the last decrease can decrease it again, so the calls
//     already under way when trouble began count as one signal, not as many;
//   - a slow call multiplies the limit by Threshold/latency, but by no more
//     than Backoff and no less than 1/2: a call 1.6× slower than Threshold
//     cuts the limit to 0.62×, so a downstream that lost capacity is
//     followed in one step, not a step per round, and the limit does not
//     sit above it while every call there is slow;
//   - a failed call multiplies it by Backoff; a failure right after a
//     decrease for a failure, before any call admitted since succeeded,
//     squares the factor of that decrease (0.9, 0.81, 0.66, then 1/2), but
//     never goes below 1/2 (or Backoff, if lower): one failure costs little,
//     a downstream that keeps failing is backed off from within a few rounds;
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
// limit saw-tooths between Backoff×L and L, L the limit at which calls get
// slower than Threshold, so latency exceeds Threshold in part of each round.
type AIMD struct {
	// Threshold is the latency above which a call counts as a failure; 0
	// counts failures only.
	Threshold time.Duration
	// Backoff is the factor of a decrease, in (0, 1): the factor of a first
	// failure, and the largest of a slow call's (see above); 0 means 0.9.
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
	// failing is the factor of the last decrease if it was for a failure
	// and no call admitted since has succeeded; 0 otherwise.
	failing float64
}

func (r *aimdRule) next(limit float64, s sample) (float64, string, time.Duration) {
	reason := ""
	switch {
	case failed(r.cfg.Failure, s.err):
		reason = "failure"
	case r.cfg.Threshold > 0 && s.latency > r.cfg.Threshold:
		reason = "latency"
	}
	if s.seq >= r.cut && reason != "failure" {
		r.failing = 0 // a call admitted since the last decrease did not fail
	}
	if reason != "" {
		if s.seq < r.cut {
			return limit, "", 0 // admitted before the last decrease
		}
		r.cut = s.next
		factor := r.cfg.Backoff
		switch {
		case reason == "latency":
			factor = min(factor, max(float64(r.cfg.Threshold)/float64(s.latency), 0.5))
		case r.failing > 0:
			factor = min(factor, max(r.failing*r.failing, 0.5))
		}
		if reason == "failure" {
			r.failing = factor
		}
		return min(limit*factor, limit-1), reason, s.latency
	}
	if float64(s.inFlight) < limit/2 {
		return limit, "", 0
	}
	return limit + 1/limit, "increase", s.latency
}

func (r *aimdRule) set(float64) { r.failing = 0 }
