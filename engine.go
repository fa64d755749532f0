package pipeline

// This file is the engine every stage runs on: worker goroutines that
// recover panics, the shared receive loop, the call path of a user function
// (timeout, retry, limiter), and the settling of a failed call. Stages are
// thin adapters onto it (see builder.go for how one is started).

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// job is what one worker goroutine of a stage runs: run, then exit (clean
// if run returned normally). item is the item a panic in run names (nil if
// none). Each way of running a stage (workers.go) keeps its workers' jobs in
// one allocation, so that a goroutine costs the go statement and nothing
// else.
type job interface {
	run()
	item() any
	exit(clean bool)
}

// goWorker runs j on a goroutine counted by the pipeline. A panic in j.run
// (that is, in a user function it calls) fails the pipeline with a
// *StageError holding a *PanicError and the item j.item returns; so does a
// runtime.Goexit, with ErrGoexit. j.exit always runs last, with clean =
// true if run returned normally.
func goWorker(p *Pipeline, s *stage, j job) {
	s.live.Add(1)
	s.begin(p)
	if !p.spawn() {
		s.live.Add(-1)
		s.end(p)
		j.exit(false)
		s.workerEnded()
		return
	}
	go work(p, s, j)
}

// eachJob is a worker that hands each item of in to handle (see eachItem);
// owner closes the stage's outputs once its last worker is gone.
type eachJob[T any] struct {
	p      *Pipeline
	s      *stage
	owner  interface{ closeOne() }
	t      *counters
	in     inlet[T]
	handle func(t *counters, v T) bool
	cur    T
	plain  bool // not calls of a user function, and a panic names no item
}

func (j *eachJob[T]) run() {
	eachItem(j.p, j.t, j.in, j.s.calls && !j.plain, &j.cur, j.handle)
}

func (j *eachJob[T]) item() any {
	if j.plain {
		return nil
	}
	return j.cur
}

func (j *eachJob[T]) exit(bool) { j.owner.closeOne() }

// work is the body of a goroutine goWorker started.
func work(p *Pipeline, s *stage, j job) {
	defer p.exited()
	defer s.end(p)
	defer s.live.Add(-1)
	clean := false
	defer func() {
		if x := recover(); x != nil || !clean {
			var cause error = ErrGoexit // run neither returned nor panicked
			if x != nil {
				cause = panicError(x)
			}
			p.fail(&StageError{Stage: s.name, Item: j.item(), Err: cause})
		}
		j.exit(clean)
		s.workerEnded()
	}()
	j.run()
	clean = true
}

// eachItem is the receive loop of every stage that handles its items one at
// a time: it takes the items of in until it ends, counts each one taken (as
// the start of a call of the user's function, if calls), records it in cur
// (the item a panic names) and hands it to handle, which returns false to
// stop.
func eachItem[T any](p *Pipeline, t *counters, in inlet[T], calls bool, cur *T, handle func(t *counters, v T) bool) {
	for {
		v, ok := in.nextTimed(p, t)
		if !ok {
			return
		}
		p.took(t, 1)
		*cur = v
		goOn := handle(t, v)
		if calls {
			t.called.Add(1)
		}
		if !goOn {
			return
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
	tell bool // T is a Discarder
}

func makeCaller[T, R any](p *Pipeline, s *stage, cfg *stageConfig, fn func(context.Context, T) (R, error)) caller[T, R] {
	return caller[T, R]{p: p, s: s, cfg: cfg, fn: fn,
		slow: cfg.timeout > 0 || cfg.attempts > 1 || cfg.limiter != nil || cfg.breaker != nil,
		tell: discarder[T]()}
}

// call runs the function on v: once, or as the stage's Retry option says,
// each attempt under its Timeout and holding a slot of its Limiter.
func (c *caller[T, R]) call(t *counters, v T) (R, error) {
	if !c.slow {
		return c.fn(c.p.ctx, v)
	}
	attempts := max(c.cfg.attempts, 1)
	c.cfg.budget.deposit()
	for attempt := 1; ; attempt++ {
		r, err := c.try(t, v)
		if err == nil || attempt >= attempts || c.p.cancelled() || !c.cfg.retryable(err) || !c.cfg.budget.take() {
			return r, withAttempts(err, attempt)
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
	if c.cfg.strict && err == nil {
		if err = lateError(ctx, c.cfg.timeout); err != nil {
			var zero R
			r = zero
		}
	}
	if err != nil && c.cfg.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) &&
		!errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (%w after %v)", err, context.DeadlineExceeded, c.cfg.timeout)
	}
	h.finish(c.p.ctx, err) // gives the slot back; an adaptive limiter learns from the call
	return r, err
}

// try is attempt under the stage's Breaker, if any: refused (ErrOpen,
// counted as Rejected) while it is open, and told the outcome otherwise (a
// panic counts as a failure).
func (c *caller[T, R]) try(t *counters, v T) (r R, err error) {
	b := c.cfg.breaker
	if b == nil {
		return c.attempt(v)
	}
	probe, err := b.admit()
	if err != nil {
		t.rejected.Add(1)
		return r, err
	}
	ok := false
	defer func() {
		if !ok {
			b.done(probe, errPanicked)
		}
	}()
	r, err = c.attempt(v)
	ok = true
	b.done(probe, err)
	return r, err
}

func (c *caller[T, R]) backoff(attempt int) time.Duration {
	if c.cfg.backoff != nil {
		return c.cfg.backoff(attempt)
	}
	return DefaultBackoff(attempt)
}

// sleep waits d unless the pipeline is cancelled first; then it reports
// false, as interrupted does.
func (p *Pipeline) sleep(d time.Duration) bool {
	if d <= 0 {
		return !p.interrupted()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		p.interrupted()
		return false
	}
}

// settle decides what the failure of the call on item v means. It returns
// true if the stage should go on (the item was skipped through OnError, and
// told so if its type is a Discarder). An error that arrives after the
// pipeline is cancelled is a consequence of that, not a new failure.
func (c *caller[T, R]) settle(t *counters, v T, err error) bool {
	t.errors.Add(1)
	if c.p.interrupted() {
		return false
	}
	attempts, err := untried(err)
	se := &StageError{Stage: c.s.name, Item: v, Err: err}
	if c.cfg.onError != nil {
		if herr := c.cfg.handle(se); herr != nil {
			return c.failed(t, herr)
		}
	}
	if c.cfg.dead != nil {
		if !c.cfg.dead.put(v, err, c.s.name, attempts) {
			return false
		}
		t.deadLetters.Add(1)
		return true
	}
	if c.cfg.onError != nil {
		if c.tell {
			discard(v, se)
		}
		return true
	}
	return c.failed(t, se)
}

// failed records the failure of the item t's worker holds. Under a
// Checkpoint the item is not handled: its ticket is kept, so that no commit
// passes it (under CollectErrors the stage goes on).
func (c *caller[T, R]) failed(t *counters, err error) bool {
	if c.p.track != nil {
		t.cur = nil
	}
	return c.p.failItem(c.s.index, err)
}

// callAndSend calls c on v and sends the result on out (counted); an error
// is settled instead. It reports whether the worker should go on.
func callAndSend[T, R any](c *caller[T, R], t *counters, out chan R, v T) bool {
	start := t.callStart(c.p)
	r, err := c.call(t, v)
	callEnd(c.p, c.s, t, start, v, err)
	if err != nil {
		return c.settle(t, v, err)
	}
	return sendCounted(c.p, t, out, r)
}
