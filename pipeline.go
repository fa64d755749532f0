package pipeline

// This file holds the handle every stage shares: the Pipeline, its options,
// Context and Stats, and the state changes stages make (fail,
// interrupted, spawn, …). The transitions users drive (Stop, Shutdown, Wait,
// Finally) are in lifecycle.go.
//
// A pipeline is in one of four states, and moves only forward:
//
//	running ──Stop──▶ stopping
//	   │                 │
//	   └─────cancel──────┴──▶ cancelled
//
//	any of them ──(no stage goroutine and no sink left, Wait)──▶ ended
//
//   - running: stages are built and run; sources emit.
//   - stopping ([Pipeline.Stop]): sources end and close their outputs; every
//     other stage goes on until its input closes (a drain). stopped reports it.
//   - cancelled: the pipeline's context is done. What cancels it: the parent
//     context ending, the first failure (fail), a sink ending early
//     (endEarly), Shutdown's deadline (cancelRunning), and the end itself.
//     Every stage gives up; one that gave up with work in hand calls
//     interrupted, which records the cause as the result unless it is an
//     early exit.
//   - ended: Wait saw no stage goroutine and no sink left, ran the Finally
//     hooks and fixed the result; no goroutine may start after that.
//
// The result is the first failure recorded (fail, interrupted, or
// cancelRunning), or nil.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Option configures a [Pipeline] in [New].
type Option func(*Pipeline)

// DefaultBufferSize is the capacity of every stage's output channel unless
// [DefaultBuffer] or [BufferSize] says otherwise. Buffered outputs let each
// stage run ahead of the next by a few items, which removes most goroutine
// switches; they do not change what is delivered. Without either option, a
// wide stage and its source get more (see "Buffers" in the package doc).
const DefaultBufferSize = 64

// DefaultBuffer sets the capacity of the output channel of every stage of the
// pipeline not given its own [BufferSize], exactly (see "Buffers" in the
// package documentation). Zero makes outputs unbuffered; a negative n fails
// the pipeline with [ErrInvalidArgument].
func DefaultBuffer(n int) Option {
	return func(p *Pipeline) {
		if n < 0 {
			p.fail(errArg("New", fmt.Sprintf("DefaultBuffer(%d): size must be >= 0", n)))
			return
		}
		p.buf, p.bufSet = n, true
	}
}

// Pipeline is the handle every stage of one pipeline shares: a context that
// all stages obey, the slot for the first failure, and the record of every
// goroutine its stages started. Create it with [New], build stages on it,
// consume the last stage with a sink ([Collect], [ForEach], …) or call
// [Pipeline.Wait]. All methods are safe for concurrent use.
type Pipeline struct {
	ctx    context.Context
	done   <-chan struct{} // ctx.Done(): closed once cancelled
	cancel context.CancelCauseFunc

	stopped atomic.Bool
	stopCh  chan struct{} // closed by Stop; made at the first ask (stopChan)
	closed  bool          // Stop has closed stopCh, or will close it at once when made

	mu      sync.Mutex
	err     error                // the result: the first failure
	running int                  // stage goroutines alive
	sinks   int                  // sinks running on their callers' goroutines
	idle    chan struct{}        // made by a waiter (idleCh); closed when running or sinks drop, and at the end
	ending  bool                 // Wait is running the Finally hooks: no goroutine may start
	ended   bool                 // the result is fixed
	finally []func(error) error  // hooks run at the end
	values  map[any]any          // see Attach
	stages  []*stage             // creation order
	first   [8]*stage            // stages' storage for a small pipeline
	chans   chanIndex            // channel → its maker and readers, for every channel a stage made or reads
	onStop  []context.CancelFunc // source contexts to cancel on Stop
	buf     int
	bufSet  bool       // DefaultBuffer was given: every output takes buf as it is
	obs     *observers // see WithObserver; nil: none
	track   *tracking  // see NewCheckpoint; nil: no item is tracked

	collect   bool       // CollectErrors
	collected []struct { // under CollectErrors, every item's failure
		stage int // its stage's index
		err   error
	}
	sealers []func() // run once, when the first sink starts or Wait is called (see seal)
	sealed  bool
	paced   atomic.Pointer[chan struct{}] // the wake channel of a paced source holding back (see pace.go); nil: none
}

// New returns a pipeline whose stages all obey ctx: when ctx ends, every stage
// stops, closes its output and returns, and [Pipeline.Wait] reports
// context.Cause(ctx). A nil ctx fails the pipeline with [ErrInvalidArgument].
func New(ctx context.Context, opts ...Option) *Pipeline {
	p := &Pipeline{
		buf: DefaultBufferSize,
	}
	p.stages = p.first[:0]
	parent := ctx
	if parent == nil {
		parent = context.Background()
	}
	p.ctx, p.cancel = context.WithCancelCause(parent)
	p.done = p.ctx.Done()
	if ctx == nil {
		p.fail(errArg("New", "nil context"))
	}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p
}

// Context returns the context every stage obeys. It is done when the parent
// context ends, at the first failure (with that failure as its cause), when a
// sink ends early on purpose, and once [Pipeline.Wait] has returned.
func (p *Pipeline) Context() context.Context {
	if p == nil {
		return context.Background()
	}
	return p.ctx
}

// Stats returns a snapshot of every stage's counters, in creation order. It is
// safe to call at any time, from any goroutine, also while the pipeline runs.
func (p *Pipeline) Stats() []StageStats {
	if p == nil {
		return nil
	}
	_, stats := p.view()
	return stats
}

// view returns the stages built so far and a snapshot of each.
func (p *Pipeline) view() ([]*stage, []StageStats) {
	p.mu.Lock()
	stages := p.stages[:len(p.stages):len(p.stages)]
	p.mu.Unlock()
	stats := make([]StageStats, len(stages))
	for i, s := range stages {
		stats[i] = s.snapshot()
	}
	markBottleneck(stats)
	return stages, stats
}

// fail records err as the pipeline's failure if it is the first one, and
// cancels the pipeline's context with it. It records err even once the
// pipeline has ended (a sink failing on its own goroutine, a stage built too
// late): such a failure must not be swallowed.
func (p *Pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	first := p.err
	p.mu.Unlock()
	p.cancel(first)
}

// failUnlessEnded is fail, but only while the pipeline has not ended: a
// misuse after the end must not change the result every Wait returned.
func (p *Pipeline) failUnlessEnded(err error) {
	p.mu.Lock()
	ended := p.ending
	p.mu.Unlock()
	if !ended {
		p.fail(err)
	}
}

// cancelRunning cancels the pipeline from outside with cause, and records
// the cause as the failure only if some stage is still running (otherwise
// nothing can be lost).
func (p *Pipeline) cancelRunning(cause error) {
	p.mu.Lock()
	running := p.running > 0 && !p.ended
	if running && p.err == nil {
		p.err = cause
	}
	p.mu.Unlock()
	if running {
		p.cancel(cause)
	}
}

// endEarly cancels the pipeline because a sink stopped reading on purpose.
func (p *Pipeline) endEarly() { p.cancel(errEarlyExit) }

// cancelled reports whether the pipeline's context is done.
func (p *Pipeline) cancelled() bool { return p.ctx.Err() != nil }

// interrupted reports whether the pipeline's context is done; if it is, the
// calling stage gave up with work in hand, and the cause is recorded as the
// result (unless it is an early exit, which loses nothing on purpose). On an
// item's path, write `p.cancelled() && p.gaveUp()`, which inlines the check.
func (p *Pipeline) interrupted() bool {
	if !p.cancelled() {
		return false
	}
	p.recordInterrupt()
	return true
}

// gaveUp is recordInterrupt that reports true, for `p.cancelled() &&
// p.gaveUp()` on an item's path.
func (p *Pipeline) gaveUp() bool {
	p.recordInterrupt()
	return true
}

// recordInterrupt records the cause of the cancellation as the result,
// as interrupted does once it has seen the pipeline cancelled.
func (p *Pipeline) recordInterrupt() {
	cause := context.Cause(p.ctx)
	if cause == errEarlyExit {
		return
	}
	p.mu.Lock()
	if p.err == nil && !p.ended {
		p.err = cause
	}
	p.mu.Unlock()
}

// spawn counts a goroutine about to start, for Wait; exited counts it
// gone. spawn returns false, and counts nothing, once the pipeline is
// ending: no goroutine may start then.
func (p *Pipeline) spawn() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ending {
		return false
	}
	p.running++
	return true
}

func (p *Pipeline) exited() {
	p.mu.Lock()
	p.running--
	p.wakeWaiters()
	p.mu.Unlock()
}

// wakeWaiters wakes every Wait and Shutdown to look again. p.mu is held.
func (p *Pipeline) wakeWaiters() {
	if p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// idleCh returns the channel wakeWaiters closes next. p.mu is held.
func (p *Pipeline) idleCh() <-chan struct{} {
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

// hold keeps the pipeline from ending while a stage is being built (its
// goroutines are not counted yet); it reports false, and holds nothing, if
// the pipeline is already ending. release ends the hold. p.mu is held.
func (p *Pipeline) hold() bool {
	if p.ending {
		return false
	}
	p.running++
	return true
}

// release ends a hold.
func (p *Pipeline) release() {
	p.mu.Lock()
	p.running--
	p.wakeWaiters()
	p.mu.Unlock()
}

// enterSink counts a sink running on its caller's goroutine, so that Wait and
// Shutdown elsewhere wait for it; the leave method of what it returns ends
// it.
func (p *Pipeline) enterSink() sinkLeave {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ending {
		return sinkLeave{}
	}
	p.sinks++
	return sinkLeave{p}
}

// sinkLeave ends what enterSink began; its zero value does nothing.
type sinkLeave struct{ p *Pipeline }

func (l sinkLeave) leave() {
	if l.p == nil {
		return
	}
	l.p.mu.Lock()
	l.p.sinks--
	l.p.wakeWaiters()
	l.p.mu.Unlock()
}
