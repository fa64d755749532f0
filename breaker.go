package pipeline

// This file holds CircuitBreaker, which stages share through the Breaker
// option: it counts the failures of their calls in a sliding window, and once
// too many fail it makes calls fail fast with ErrOpen for a cool-down, then
// lets one probe call decide whether to close again.

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrOpen is the error of a call that a [CircuitBreaker] refused: the breaker
// is open (or half-open, with its probe call running), so the stage's
// function was not called. The item fails as if the function had returned
// ErrOpen: it goes to [OnError], the stage's dead letters or the pipeline's
// result. [Retry] does not retry it.
var ErrOpen = errors.New("pipeline: circuit breaker open")

// BreakerState is the state of a [CircuitBreaker].
type BreakerState uint8

// The states of a [CircuitBreaker].
const (
	// BreakerClosed: calls run, and their failures are counted.
	BreakerClosed BreakerState = iota
	// BreakerOpen: calls fail fast with [ErrOpen] until the cool-down ends.
	BreakerOpen
	// BreakerHalfOpen: the cool-down has ended; the next call is the probe
	// (the others fail fast while it runs). Its success closes the breaker,
	// its failure opens it for another cool-down.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", uint8(s))
}

// BreakerConfig says when a [CircuitBreaker] opens. Failures are counted in
// a sliding Window (in ten slices of Window/10); the breaker opens when, in
// the window, at least Failures calls failed, or (if Ratio > 0) at least
// MinCalls calls ended and the failed fraction is at least Ratio.
type BreakerConfig struct {
	Failures int           // failures in the window that open the breaker; 0: only Ratio counts
	Ratio    float64       // failed fraction that opens it, in (0, 1]; 0: only Failures counts
	MinCalls int           // calls needed in the window before Ratio applies (at least 1)
	Window   time.Duration // the sliding window; must be > 0
	CoolDown time.Duration // how long it stays open before a probe; must be > 0
	// IsFailure says which errors count as failures; nil counts every
	// error. An error it rejects counts as a success of the downstream
	// (a 404 says the server is up): e.g. func(err error) bool { return
	// !pipeline.IsPermanent(err) }.
	IsFailure func(error) bool
}

// BreakerCounts counts a [CircuitBreaker]'s transitions and refusals since
// it was made.
type BreakerCounts struct {
	Opened     uint64 // closed or half-open → open
	HalfOpened uint64 // open → half-open (a probe was let through)
	Closed     uint64 // half-open → closed (a probe succeeded)
	Rejected   uint64 // calls refused with ErrOpen
}

// CircuitBreaker stops calls to a failing downstream for a while: give the
// stages that call it the [Breaker] option (one breaker may serve several
// stages, of one pipeline or several). A stage with [Retry] asks the breaker
// before every attempt, and every attempt's outcome is counted. All methods
// are safe for concurrent use. Make one with [NewCircuitBreaker].
type CircuitBreaker struct {
	cfg     BreakerConfig
	bad     string // what is wrong with cfg; reported by every stage given the breaker
	mu      sync.Mutex
	state   BreakerState
	openAt  time.Time // when it last opened
	probing bool      // half-open, and the probe is running
	slices  [10]breakerSlice
	counts  BreakerCounts
}

type breakerSlice struct {
	n               int64 // which slice of time: UnixNano / (Window/10)
	calls, failures int
}

// NewCircuitBreaker returns a closed breaker. A config that can never open
// (Failures < 1 and Ratio = 0), Ratio outside [0, 1], or a Window or CoolDown
// <= 0 is an invalid argument: every stage given the breaker fails with
// [ErrInvalidArgument].
func NewCircuitBreaker(cfg BreakerConfig) *CircuitBreaker {
	b := &CircuitBreaker{cfg: cfg}
	switch {
	case cfg.Window <= 0 || cfg.CoolDown <= 0:
		b.bad = fmt.Sprintf("Breaker: Window (%v) and CoolDown (%v) must be > 0", cfg.Window, cfg.CoolDown)
	case cfg.Ratio < 0 || cfg.Ratio > 1:
		b.bad = fmt.Sprintf("Breaker: Ratio %v must be in [0, 1]", cfg.Ratio)
	case cfg.Failures < 1 && cfg.Ratio == 0:
		b.bad = "Breaker: Failures must be >= 1 or Ratio > 0"
	}
	b.cfg.MinCalls = max(b.cfg.MinCalls, 1)
	return b
}

// State returns the breaker's state now. An open breaker whose cool-down
// has ended reports BreakerHalfOpen: its next call is the probe.
func (b *CircuitBreaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && time.Since(b.openAt) >= b.cfg.CoolDown {
		return BreakerHalfOpen
	}
	return b.state
}

// Counts returns the breaker's transitions and refusals so far.
func (b *CircuitBreaker) Counts() BreakerCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts
}

// admit asks to start a call. It returns ErrOpen if the call must fail fast;
// otherwise probe says whether the call is the half-open probe, and done must
// be called with its outcome.
func (b *CircuitBreaker) admit() (probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		if time.Since(b.openAt) < b.cfg.CoolDown {
			break
		}
		b.state = BreakerHalfOpen
		b.counts.HalfOpened++
		fallthrough
	case BreakerHalfOpen:
		if !b.probing {
			b.probing = true
			return true, nil
		}
	}
	b.counts.Rejected++
	return false, ErrOpen
}

// done records the outcome of an admitted call (failed: it returned an
// error that counts, or panicked).
func (b *CircuitBreaker) done(probe bool, err error) {
	failed := err != nil && (b.cfg.IsFailure == nil || b.cfg.IsFailure(err))
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if probe {
		b.probing = false
		if failed {
			b.open(now)
			return
		}
		b.state = BreakerClosed
		b.counts.Closed++
		b.slices = [10]breakerSlice{}
		return
	}
	if b.state != BreakerClosed {
		return // a call admitted before the breaker opened
	}
	width := b.cfg.Window / 10
	if width <= 0 {
		width = 1
	}
	k := now.UnixNano() / int64(width)
	cur := &b.slices[k%10]
	if cur.n != k {
		*cur = breakerSlice{n: k}
	}
	cur.calls++
	if failed {
		cur.failures++
	}
	calls, failures := 0, 0
	for _, s := range b.slices {
		if k-s.n < 10 {
			calls += s.calls
			failures += s.failures
		}
	}
	if failed && (b.cfg.Failures > 0 && failures >= b.cfg.Failures ||
		b.cfg.Ratio > 0 && calls >= b.cfg.MinCalls && float64(failures) >= b.cfg.Ratio*float64(calls)) {
		b.open(now)
	}
}

// open opens the breaker for a cool-down. b.mu is held.
func (b *CircuitBreaker) open(now time.Time) {
	b.state = BreakerOpen
	b.openAt = now
	b.counts.Opened++
	b.slices = [10]breakerSlice{}
}
