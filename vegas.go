package pipeline

// This file holds Vegas, the delay-based rule of an adaptive limiter: it keeps
// the queue it reads from latency short.

import (
	"errors"
	"time"
)

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
//   - queue < max(Alpha×limit, 0.5), if a call of the round was admitted
//     with at least half the limit in use (as for [AIMD]): in the round
//     right after a "queue" drop whose latency had jumped to more than
//     twice the round before's, the drop was spurious (the queue vanished
//     at once: the latency came from a pause, of this process or of the
//     network, not from a queue the limit built) and the limit returns to
//     where it was, as TCP's Eifel response undoes a spurious cut (a drop
//     from a queue that grew a call at a time is never undone: at a small
//     limit the drop leaves no queue at all, and undoing it would swing the
//     limit between the right one and one too high);
//     otherwise it grows by half the band, (Beta−Alpha)/2×limit, at least
//     one;
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
// half the limit.
//
// Vegas keeps latency near the downstream's best and needs no threshold,
// but it needs latency to grow with load, and it reads a pause of the
// process (CPU starvation, a long GC) as a queue, if only for one round.
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
	cut         uint64        // calls admitted before this admission number do not count
	undo        float64       // the limit before a "queue" drop, for the round after it
	lastRTT     time.Duration // the mean latency of the last round that had one
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
		r.undo = 0
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
	undo, last := r.undo, r.lastRTT
	r.undo, r.lastRTT = 0, rtt
	switch {
	case queue > max(r.cfg.Beta*limit, 1):
		r.cut = s.next
		if last > 0 && rtt > 2*last {
			r.undo = limit // a jump, not a queue built a call at a time: maybe a pause
		}
		target := limit * ratio / (1 - (r.cfg.Alpha+r.cfg.Beta)/2)
		return max(target, limit/2), "queue", rtt
	case queue < max(r.cfg.Alpha*limit, 0.5) && r.busy:
		if undo > limit {
			return undo, "undo", rtt
		}
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
