package pipeline

// This file holds Checkpoint: positions of a source committed in order, up
// to which every item is fully handled, and Positioned, the items that know
// their position. How an item is followed through the stages is in tag.go
// and channels.go.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Positioned is implemented by the items of a source a [Checkpoint] follows:
// [Line] and [Record] do, and so can an item type of your own (its Offset
// and End can be any increasing count, an index in a sorted list, say).
type Positioned interface {
	Position() Position
}

// Checkpoint follows the items of one source through a pipeline and commits,
// in order, the position up to which every item is fully handled: the
// position to resume from. An item is handled when the sink call given it
// (or given every item it became: each [FlatMap] child, each [Tee] branch,
// the [Batch] that holds it) has returned, or when a stage set it aside on
// purpose: [Filter] dropped it, [DropOnFull] shed it, [OnError] skipped it,
// or it went to [DeadLetters]. Items finish in any order (an unordered
// [FanOut], a keyed stage); the commit waits for the oldest one still in
// flight, so a position is committed only once every item before it is
// handled, and positions only move forward. The memory it takes is a few
// words per item in flight, however long the input.
//
// commit is called with that position, on a goroutine of the pipeline, at
// most about once every interval while it moves, and once more when the
// pipeline ends (Wait), whether it ran to its end, was stopped or was
// cancelled: after [Pipeline.Stop] every item emitted is handled, so the
// last commit is the position after the last item emitted; after a cancel
// or a failure, it is the start of the oldest item not handled. It is not
// called twice with the same position. An error from commit fails the
// pipeline (the final one becomes its result if it had none).
//
// Every channel such a source's items travel on must be read by stages and
// sinks of the pipeline: an item taken by other code (a range over a stage's
// output) cannot be followed, and the pipeline fails with [ErrUntracked]
// once that is seen, rather than commit a position it cannot vouch for.
//
// Without a Checkpoint the pipeline tracks nothing and pays nothing for it.
type Checkpoint struct {
	p       *Pipeline
	w       window
	every   time.Duration
	commit  func(context.Context, Position) error
	bad     string
	claimed atomic.Bool

	mu        sync.Mutex // one commit at a time
	last      Position   // the position committed last
	committed bool
	ended     bool
	due       atomic.Int64 // when (monotonic) a commit may come next

	// A commit due later, if the mark moved before due. tmu is never held
	// during a commit: a worker telling of progress never waits for one.
	tmu       sync.Mutex
	timer     *time.Timer
	scheduled atomic.Bool
	closed    bool // no timer may start: the pipeline ended
}

// NewCheckpoint returns a Checkpoint for p that calls commit at most about
// once every interval, and at the end; give it to the source it follows with
// [Checkpoint.Option]. Call it before building p's first stage: every channel
// must be followed from the start. A nil p or commit, every <= 0, a p that
// already has a stage or a Checkpoint is an invalid argument: p (if not nil)
// fails with [ErrInvalidArgument], and so does the source given the Option.
func NewCheckpoint(p *Pipeline, every time.Duration, commit func(ctx context.Context, pos Position) error) *Checkpoint {
	c := &Checkpoint{p: p, every: every, commit: commit}
	switch {
	case p == nil:
		c.bad = "nil *Pipeline"
	case commit == nil:
		c.bad = "commit must not be nil"
	case every <= 0:
		c.bad = fmt.Sprintf("every = %v, must be > 0", every)
	}
	if p == nil {
		return c
	}
	if c.bad == "" {
		p.mu.Lock()
		switch {
		case p.track != nil:
			c.bad = "the pipeline already has a Checkpoint"
		case len(p.stages) > 0 || p.ended:
			c.bad = "the pipeline already has stages: make the Checkpoint first"
		default:
			p.track = &tracking{}
		}
		p.mu.Unlock()
	}
	if c.bad != "" {
		p.fail(errArg("NewCheckpoint", c.bad))
		return c
	}
	c.w.advanced = c.advanced
	c.due.Store(int64(monotonic() + every)) // the first commit after an interval
	p.Finally(func(error) error { return c.end() })
	return c
}

// Option returns the option that makes a source's items followed by c. The
// source's item type must be [Positioned]; only one source may have it. Its
// items must be emitted in the order of their positions (a [Produce]
// function that calls emit from several goroutines must keep that order).
func (c *Checkpoint) Option() StageOption {
	return func(cfg *stageConfig) {
		cfg.used |= optCheckpoint
		cfg.checkpoint = c
	}
}

// Handled returns the position up to which every item of the source is
// handled now (it may be ahead of the last commit), and false if the source
// has emitted nothing yet. It is safe to call from a stage's function: a
// sink that writes its items in a transaction can write Handled in the same
// one (see docs/resuming.md).
func (c *Checkpoint) Handled() (Position, bool) {
	return c.w.mark()
}

// InFlight returns how many items of the source are emitted but not yet
// handled, now and at most since the pipeline started: what the Checkpoint
// holds in memory.
func (c *Checkpoint) InFlight() (now, peak int) {
	return c.w.outstanding()
}

// problem returns what makes c unfit for a source of p whose items are
// Positioned (or not), or "" if nothing; the first fit source claims c.
func (c *Checkpoint) problem(p *Pipeline, positioned bool) string {
	switch {
	case c.bad != "":
		return "Checkpoint: " + c.bad
	case c.p != p:
		return "Checkpoint.Option of another pipeline"
	case !positioned:
		return "Checkpoint.Option needs items that are Positioned"
	case !c.claimed.CompareAndSwap(false, true):
		return "Checkpoint.Option given to a second source"
	}
	return ""
}

// issue returns the ticket of item v, just before the source emits it.
func (c *Checkpoint) issue(v any) *tag {
	return c.w.issue(v.(Positioned).Position())
}

// advanced is told when the oldest item in flight is handled: it commits if
// the interval has passed, and otherwise makes sure a commit comes when it
// has. A commit under way already will be followed by the next one.
func (c *Checkpoint) advanced() {
	now := int64(monotonic())
	due := c.due.Load()
	if now >= due {
		c.tick()
		return
	}
	if c.scheduled.Load() {
		return
	}
	c.tmu.Lock()
	if !c.closed && !c.scheduled.Load() {
		c.scheduled.Store(true)
		c.timer = time.AfterFunc(time.Duration(due-now), c.tick)
	}
	c.tmu.Unlock()
}

// tick commits the mark now, unless another commit is under way.
func (c *Checkpoint) tick() {
	c.scheduled.Store(false)
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if c.ended || c.p.cancelled() { // the end commits what is handled
		return
	}
	c.due.Store(int64(monotonic() + c.every))
	if err := c.commitMark(c.p.ctx); err != nil {
		c.p.fail(&StageError{Stage: "checkpoint", Err: err})
	}
}

// end is the last commit, when the pipeline ends.
func (c *Checkpoint) end() error {
	c.tmu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.tmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	if err := c.commitMark(context.WithoutCancel(c.p.ctx)); err != nil {
		return &StageError{Stage: "checkpoint", Err: err}
	}
	return nil
}

// commitMark calls commit with the mark if it moved on (under mu).
func (c *Checkpoint) commitMark(ctx context.Context) error {
	pos, ok := c.w.mark()
	if !ok || (c.committed && pos.Offset <= c.last.Offset && pos.Line <= c.last.Line) {
		return nil
	}
	if err := c.commit(ctx, pos); err != nil {
		return err
	}
	c.last, c.committed = pos, true
	return nil
}
