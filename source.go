package pipeline

// This file holds the sources: stages that take no input and emit items
// (Generate, FromSeq, FromChan, Produce), and the one loop they share.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
)

// Generate is a source that emits items in order on its output, then closes
// it. It stops early, and closes its output, when the pipeline is cancelled
// or stopped ([Pipeline.Stop]); a stopped Generate is a clean end. Generate
// takes no options: to name it or size its output, use [FromSeq] with
// slices.Values(items) and [Name] or [BufferSize].
func Generate[T any](p *Pipeline, items ...T) <-chan T {
	return source(p, "generate", nil, "", nil, func(_ context.Context, _ inlet[T], e *emitter[T]) error {
		for _, v := range items {
			if p.stopped.Load() {
				return ErrStopped
			}
			if err := e.emit(v); err != nil {
				return err
			}
		}
		return nil
	})
}

// FromSeq is a source that emits the values of seq in order, then closes its
// output. It stops pulling from seq when the pipeline is cancelled or
// stopped. A panic in seq fails the pipeline with a [*PanicError]. A nil seq
// is an invalid argument.
func FromSeq[T any](p *Pipeline, seq iter.Seq[T], opts ...StageOption) <-chan T {
	return source(p, "fromseq", opts, mustNotBeNil(seq == nil, "seq"), nil, func(_ context.Context, _ inlet[T], e *emitter[T]) error {
		if p.stopped.Load() {
			return ErrStopped
		}
		var err error
		seq(func(v T) bool {
			if err = e.emit(v); err == nil && p.stopped.Load() {
				err = ErrStopped
			}
			return err == nil
		})
		return err
	})
}

// FromChan adopts a channel made outside the pipeline: it forwards every value
// received from ch, in order, until ch is closed. Unlike a plain range over
// ch, it gives up when the pipeline is cancelled and ends cleanly on
// [Pipeline.Stop] (values still in ch are then left there, not lost: they were
// never emitted). FromChan never closes ch. A stage given a channel the
// pipeline did not make reads it the same way itself, without FromChan's
// goroutine; FromChan makes the source a stage of its own, with a [Name], its
// own buffer and its own line in [Pipeline.Stats]. A nil ch is an invalid
// argument.
func FromChan[T any](p *Pipeline, ch <-chan T, opts ...StageOption) <-chan T {
	if ch == nil {
		return source[T](p, "fromchan", opts, mustNotBeNil(true, "channel"), nil, nil)
	}
	return source(p, "fromchan", opts, "", ch, func(_ context.Context, in inlet[T], e *emitter[T]) error {
		for {
			v, k, ok := in.nextTagged(p)
			if !ok {
				return nil // closed, stopped, or cancelled (recorded by next)
			}
			if k != nil { // an item of a Checkpoint's source: it would be lost
				return fmt.Errorf("%w: FromChan forwards items as new ones: read the channel with a stage", ErrUntracked)
			}
			if err := e.emit(v); err != nil {
				return err
			}
		}
	})
}

// Produce is a source driven by fn: fn calls emit for each item and returns
// when it has no more. emit blocks while downstream is full (backpressure) and
// returns a non-nil error once the pipeline is cancelled (the cause) or stopped
// ([ErrStopped]); fn must then return. emit is safe to call from several
// goroutines, until fn returns. The ctx handed to fn is done in both
// cases too, so fn can give up a blocking call.
//
// fn returning nil, [ErrStopped], or (after Stop) its ctx's error is a clean
// end. Any other error fails the pipeline as a [*StageError]; a panic in fn
// fails it with a [*PanicError]. A nil fn is an invalid argument.
func Produce[T any](p *Pipeline, fn func(ctx context.Context, emit func(T) error) error, opts ...StageOption) <-chan T {
	return source(p, "produce", opts, mustNotBeNil(fn == nil, "fn"), nil, func(ctx context.Context, _ inlet[T], e *emitter[T]) error {
		return fn(ctx, e.emit)
	})
}

// The built-in sources (Generate, FromSeq, FromChan) look at Stop before
// taking their next item, and deliver an item once taken: their emit gives
// up only on cancellation. Produce's emit also refuses items after Stop, and
// returns ErrStopped so fn knows the item was not emitted.

// source is the one loop behind every source stage: it runs fn on the
// stage's goroutine with an emit that counts, obeys Stop and cancellation,
// and sends with the non-blocking fast path first. Sources other than the
// three built-in loops (Produce, the reader sources) get Produce's emit and
// context: see the comment above. from, if not nil, is the
// channel FromChan forwards: adopted like any stage's input, so that one of
// the pipeline's own channels is read to its end (it closes on Stop and
// cancel like every output of the pipeline) and an outside one as FromChan
// promises.
func source[T any](p *Pipeline, kind string, opts []StageOption, bad string, from <-chan T, fn func(context.Context, inlet[T], *emitter[T]) error) <-chan T {
	// A source whose fn is not one of the built-in loops (Produce, the
	// reader sources) has Produce's emit and context.
	produce := kind != "generate" && kind != "fromseq" && kind != "fromchan"
	var cp *Checkpoint // the Checkpoint following the source's items, if any
	if c, _ := configure(opts).checkpoint.(*Checkpoint); c != nil {
		var zero T
		_, positioned := any(zero).(Positioned)
		cp, bad = c, firstProblem(bad, c.problem(p, positioned))
	}
	sp := spec{kind: kind, workers: 1, outs: 1, allowed: optsBasic | optCheckpoint, source: true, bad: bad}
	start := func(n *node[T, T]) {
		e := &emitter[T]{n: n, ctr: &n.s.ctr[0], ctx: p.ctx, produce: produce, fn: fn, cp: cp}
		if kind != "generate" && kind != "fromchan" {
			e.pace = newPacer(n.cfg.buf < 0 && !p.bufSet)
		}
		if produce {
			e.stop = p.stopChan()
			e.ctx, e.cancel = p.stopContext()
		}
		n.left.Store(1)
		goWorker(p, &n.s, e)
	}
	if from != nil {
		return build(p, sp, opts, start, from).out
	}
	return build(p, sp, opts, start).out
}

// emitAfterReturn is the error of an emit called after its Produce function
// returned. The item is refused; while the pipeline still runs, the misuse
// fails it, so that the refused item is not lost silently.
func emitAfterReturn(p *Pipeline, stage string) error {
	err := fmt.Errorf("%w: %s: emit called after the source function returned", ErrInvalidArgument, stage)
	p.failUnlessEnded(err)
	return err
}

// stopContext returns a child of the pipeline's context that is also
// cancelled by Stop.
func (p *Pipeline) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(p.ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped.Load() {
		cancel()
	} else {
		p.onStop = append(p.onStop, cancel)
	}
	return ctx, cancel
}

// emitter is the goroutine of a source stage and the emit it hands fn.
type emitter[T any] struct {
	n       *node[T, T]
	ctr     *counters
	stop    <-chan struct{} // nil: a taken item is delivered despite Stop
	ctx     context.Context
	cancel  context.CancelFunc
	produce bool // fn is not a built-in loop: it has Produce's emit and context
	fn      func(context.Context, inlet[T], *emitter[T]) error
	cp      *Checkpoint // the Checkpoint following the source's items, if any
	// Produce's fn may hand emit to goroutines of its own: an emit after
	// fn has returned is refused (guard), never a send on a closed channel.
	guard    sync.RWMutex
	returned bool
	// A user's fn (not Generate's or FromChan's loop) is paced (see pace.go).
	pace *pacer
}

func (e *emitter[T]) emit(v T) error {
	p := e.n.p
	if e.produce {
		e.guard.RLock()
		defer e.guard.RUnlock()
		if e.returned {
			return emitAfterReturn(p, e.n.s.name)
		}
		if p.stopped.Load() {
			return ErrStopped
		}
	}
	if p.cancelled() {
		p.recordInterrupt()
		return context.Cause(p.ctx)
	}
	if p.track != nil {
		var k *tag
		if e.cp != nil {
			k = e.cp.issue(v)
		}
		if err := deliverTagged(p, e.ctr, e.n.out, v, k, e.stop); err != nil {
			return err
		}
	} else if q := e.n.spill.Load(); q != nil {
		if err := q.put(p, e.ctr, e.n.out, v, e.stop); err != nil {
			return err
		}
	} else if err := deliverTimed(p, e.ctr, e.n.out, v, e.stop); err != nil {
		return err
	}
	if n := e.ctr.out.Add(1); e.pace != nil {
		e.pace.emitted(p, &e.n.s, n, e.stop)
	}
	return nil
}

func (e *emitter[T]) run() {
	p := e.n.p
	err := e.fn(e.ctx, e.n.in, e)
	switch {
	case err == nil, errors.Is(err, ErrStopped):
	case p.interrupted():
	case p.stopped.Load() && errors.Is(err, context.Canceled) && e.ctx.Err() != nil:
	default:
		p.failItem(e.n.s.index, &StageError{Stage: e.n.s.name, Err: err})
	}
}

func (e *emitter[T]) item() any { return nil }

func (e *emitter[T]) exit(bool) {
	if e.produce {
		e.guard.Lock()
		e.returned = true
		e.guard.Unlock()
		e.cancel()
	}
	e.n.closeOne()
}
