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
//   - a call that failed, or took longer than Threshold (if set), multiplies
//     the limit by Backoff, lowering it by at least one slot; at most once
//     per round: only a call admitted after the last decrease can decrease
//     it again, so the calls already under way when trouble began count as
//     one signal, not as many;
//   - but if no call admitted since the last decrease was good (none
//     succeeded within Threshold), the round is bad again and the decrease
//     compounds: its factor is the square of the last one (0.9, 0.81, 0.66,
//     then 1/2), never below 1/2 (or Backoff, if lower). One bad round, a
//     pause of the process or a burst, costs little; a downstream that stays
//     overloaded, because its capacity fell, is backed off from within a few
//     rounds, not by a tenth a round, so few calls run slow or fail there;
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
// slower than Threshold (or fail), so some calls of each tooth are slow.
type AIMD struct {
	// Threshold is the latency above which a call counts as a failure; 0
	// counts failures only.
	Threshold time.Duration
	// Backoff is the factor of a decrease after a good round, in (0, 1); 0
	// means 0.9. Decreases in a row compound it, down to 1/2 (see above).
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
	// last is the factor of the last decrease if no call admitted since has
	// been good (neither failed nor slow); 0 otherwise.
	last float64
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
		factor := r.cfg.Backoff
		if r.last > 0 { // bad rounds in a row
			factor = min(factor, max(r.last*r.last, 0.5))
		}
		r.last = factor
		return min(limit*factor, limit-1), reason, s.latency
	}
	if s.seq >= r.cut {
		r.last = 0
	}
	if float64(s.inFlight) < limit/2 {
		return limit, "", 0
	}
	return limit + 1/limit, "increase", s.latency
}

func (r *aimdRule) set(float64) { r.last = 0 }
