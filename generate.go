package pipeline

import (
	"context"
	"errors"
	"iter"
)

// Generate is a source that emits items in order on its output, then closes
// it. It stops early, and closes its output, when the pipeline is cancelled
// or stopped ([Pipeline.Stop]); a stopped Generate is a clean end.
func Generate[T any](p *Pipeline, items ...T) <-chan T {
	return source(p, "generate", nil, nil, func(_ context.Context, emit func(T) error) error {
		for _, v := range items {
			if p.stopped.Load() {
				return ErrStopped
			}
			if err := emit(v); err != nil {
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
	if seq == nil {
		return source[T](p, "fromseq", opts, errNil("seq"), nil)
	}
	return source(p, "fromseq", opts, nil, func(_ context.Context, emit func(T) error) error {
		if p.stopped.Load() {
			return ErrStopped
		}
		var err error
		seq(func(v T) bool {
			if err = emit(v); err == nil && p.stopped.Load() {
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
		return source[T](p, "fromchan", opts, errNil("channel"), nil)
	}
	return source(p, "fromchan", opts, nil, func(_ context.Context, emit func(T) error) error {
		for {
			if p.stopped.Load() {
				return ErrStopped
			}
			var v T
			var ok bool
			select {
			case v, ok = <-ch:
			default:
				select {
				case v, ok = <-ch:
				case <-p.done:
					p.noteCancel()
					return context.Cause(p.ctx)
				case <-p.stopCh:
					return ErrStopped
				}
			}
			if !ok {
				return nil
			}
			if err := emit(v); err != nil {
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
	if fn == nil {
		return source[T](p, "produce", opts, errNil("fn"), nil)
	}
	return source(p, "produce", opts, nil, fn)
}

// The built-in sources (Generate, FromSeq, FromChan) look at Stop before
// taking their next item, and deliver an item once taken: their emit gives
// up only on cancellation. Produce's emit also refuses items after Stop, and
// returns ErrStopped so fn knows the item was not emitted.

// source is the one engine behind every source stage: it runs fn on its own
// goroutine with an emit that counts, obeys Stop and cancellation, and sends
// with the non-blocking fast path first.
func source[T any](p *Pipeline, kind string, opts []StageOption, bad error, fn func(context.Context, func(T) error) error) <-chan T {
	if p == nil {
		return closedChan[T]()
	}
	s, cfg, err := p.newStage(kind, 1, optsSource, opts)
	out := output[T](p, s, cfg.buf, &err)
	p.describe(s, func(s *stage) {
		s.source = true
		s.queue = queueOf(out)
	})
	if err == nil && bad != nil {
		err = p.invalid(s, "%v", bad)
	}
	if err != nil {
		close(out)
		return out
	}
	ctr := &s.ctr[0]
	produce := kind == "produce"
	var stop <-chan struct{} // nil: a taken item is delivered despite Stop
	if produce {
		stop = p.stopCh
	}
	emit := func(v T) error {
		if produce && p.stopped.Load() {
			return ErrStopped
		}
		if p.halted() {
			p.noteCancel()
			return context.Cause(p.ctx)
		}
		if err := deliver(p, out, v, stop); err != nil {
			return err
		}
		ctr.out.Add(1)
		return nil
	}
	ctx, cancel := p.ctx, context.CancelFunc(func() {})
	if produce {
		ctx, cancel = p.stopContext()
	}
	goWorker(p, s, nil, func() {
		err := fn(ctx, emit)
		switch {
		case err == nil, errors.Is(err, ErrStopped):
		case p.halted():
			p.noteCancel()
		case p.stopped.Load() && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		default:
			p.fail(&StageError{Stage: s.name, Err: err})
		}
	}, func(bool) {
		cancel()
		close(out)
	})
	return out
}

// stopContext returns a child of the pipeline's context that is also
// cancelled by Stop.
func (p *Pipeline) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(p.ctx)
	p.mu.Lock()
	if p.stopped.Load() {
		p.mu.Unlock()
		cancel()
		return ctx, cancel
	}
	p.onStop = append(p.onStop, cancel)
	p.mu.Unlock()
	return ctx, cancel
}

func closedChan[T any]() <-chan T {
	ch := make(chan T)
	close(ch)
	return ch
}

type nilArg string

func (n nilArg) Error() string { return string(n) + " must not be nil" }

func errNil(what string) error { return nilArg(what) }
