package pipeline

import "context"

// FanOut runs fn on every item of in with workers goroutines and sends each
// result on its output, in completion order (use [FanOutOrdered] to keep input
// order). At most workers calls run at once, fewer if a shared [Limit] says so.
//
// fn gets the pipeline's context (with a deadline under [Timeout]); an error
// from fn fails the pipeline as a [*StageError] naming the stage and item,
// unless [OnError] skips it; [Retry] re-runs it first. A panic in fn fails the
// pipeline with a [*PanicError]. On cancel the workers stop taking items and
// the output is closed; on [Pipeline.Stop] they finish every item still coming.
// workers < 1, a nil fn or a nil in is an invalid argument.
func FanOut[T, R any](p *Pipeline, in <-chan T, workers int, fn func(context.Context, T) (R, error), opts ...StageOption) <-chan R {
	s, cfg, out, src, ok := transform[T, R](p, "fanout", in, workers, nilName(fn == nil, "fn"), optsCall, opts)
	if !ok {
		return out
	}
	runWorkers(p, s, src, out, workers, true, callStep(newCaller(p, s, cfg, fn)))
	return out
}

// FanOutOrdered is [FanOut] that sends results in input order. At most
// workers calls run at once; a result that finishes early waits in a fixed
// window of 4×workers results (at least 16) for the ones before it, and a
// worker whose result is beyond the window waits for room, so memory does not
// grow with the input. Items skipped through [OnError] leave no gap. Errors,
// cancel and Stop behave as in FanOut.
func FanOutOrdered[T, R any](p *Pipeline, in <-chan T, workers int, fn func(context.Context, T) (R, error), opts ...StageOption) <-chan R {
	s, cfg, out, src, ok := transform[T, R](p, "fanoutordered", in, workers, nilName(fn == nil, "fn"), optsCall, opts)
	if !ok {
		return out
	}
	runOrdered(p, s, src, out, workers, max(4*workers, 16), newCaller(p, s, cfg, fn))
	return out
}

// FlatMap runs fn on every item of in with workers goroutines; fn sends any
// number of results (zero included) through emit. Results of one call keep
// the order fn emits them in; results of different calls interleave. emit
// blocks under backpressure and returns an error once the pipeline is
// cancelled; fn must then return. Call emit from fn's own goroutine, before
// fn returns.
//
// Errors, panics, cancel and Stop behave as in [FanOut]. Under [Retry], what a
// failed attempt already emitted stays emitted. Under [Limit], a call gives
// its slot back while emit waits for room downstream (so that a stage
// downstream sharing the limiter can always make progress) and takes it again
// before emit returns. [StageStats].Out counts emitted results, so In and Out
// need not match. workers < 1, a nil fn or a
// nil in is an invalid argument.
func FlatMap[T, R any](p *Pipeline, in <-chan T, workers int, fn func(ctx context.Context, item T, emit func(R) error) error, opts ...StageOption) <-chan R {
	s, cfg, out, src, ok := transform[T, R](p, "flatmap", in, workers, nilName(fn == nil, "fn"), optsCall, opts)
	if !ok {
		return out
	}
	// Each worker has its own emit, bound to its own counters. While a
	// call's emit waits for room downstream, the call gives back its Limit
	// slot (if any): a downstream stage sharing the limiter may need it.
	runWorkers(p, s, src, out, workers, true, func(t *counters) step[T, R] {
		var slot *heldSlot // the current call's Limit slot
		ctr := t
		emit := func(r R) error {
			if p.halted() {
				p.noteCancel()
				return context.Cause(p.ctx)
			}
			select {
			case out <- r:
			default:
				if err := slot.yield(p.ctx, func() bool { return send(p, out, r) }); err != nil {
					p.noteCancel()
					return err
				}
			}
			ctr.out.Add(1)
			return nil
		}
		c := newCaller(p, s, cfg, func(ctx context.Context, v T) (struct{}, error) {
			slot, _ = ctx.Value(heldKey{}).(*heldSlot)
			return struct{}{}, fn(ctx, v, emit)
		})
		return func(v T) (r R, _ bool, ok bool) {
			if _, err := c.call(t, v); err != nil {
				return r, false, settle(p, s, cfg, t, v, err)
			}
			return r, false, true
		}
	})
	return out
}

// Tee sends every item of in to each of n outputs, in input order. An item
// goes to all outputs before the next is taken, so the slowest reader sets the
// pace; each output has its own buffer ([BufferSize]). Every output must be
// read (or the pipeline cancelled). [StageStats].Out counts items delivered to
// all outputs. n < 1, n > 1<<20 or a nil in is an invalid argument: n
// closed outputs are returned (none if n is out of range).
func Tee[T any](p *Pipeline, in <-chan T, n int) []<-chan T {
	outs, s, src, ok := split[T](p, "tee", in, n, "")
	if !ok {
		return readOnly(outs)
	}
	t := &s.ctr[0]
	goWorker(p, s, nil, func() {
		eachItem(p, t, src, false, func(v T) bool {
			for _, o := range outs {
				if !send(p, o, v) {
					return false
				}
			}
			t.out.Add(1)
			return true
		})
	}, closer(1, outs...))
	return readOnly(outs)
}

// Partition sends each item of in to exactly one of n outputs: output
// route(item) mod n (negative values wrap around, so any int is a valid
// route). Items on one output keep input order. Every output must be read (or
// the pipeline cancelled). A panic in route fails the pipeline with a
// [*PanicError]. n < 1, n > 1<<20, a nil route or a nil in is an invalid
// argument.
func Partition[T any](p *Pipeline, in <-chan T, n int, route func(T) int) []<-chan T {
	outs, s, src, ok := split[T](p, "partition", in, n, nilName(route == nil, "route"))
	if !ok {
		return readOnly(outs)
	}
	t := &s.ctr[0]
	var cur T
	goWorker(p, s, func() any { return cur }, func() {
		eachItem(p, t, src, false, func(v T) bool {
			cur = v
			i := route(v) % n
			if i < 0 {
				i += n
			}
			if !send(p, outs[i], v) {
				return false
			}
			t.out.Add(1)
			return true
		})
	}, closer(1, outs...))
	return readOnly(outs)
}

// nilName is the invalid-argument message for a nil function argument named
// name, if isNil, else "".
func nilName(isNil bool, name string) string {
	if isNil {
		return name + " must not be nil"
	}
	return ""
}

// transform registers a one-input, one-output stage and checks its common
// arguments; bad, if not empty, is a stage-specific problem found by the
// caller (a nil function, a size out of range). If ok is false the output is already closed and the pipeline
// failed with the reason.
func transform[T, R any](p *Pipeline, kind string, in <-chan T, workers int, bad string, allowed optBit, opts []StageOption) (s *stage, cfg *stageConfig, out chan R, adopted inlet[T], ok bool) {
	if p == nil {
		out = make(chan R)
		close(out)
		return nil, nil, out, inlet[T]{}, false
	}
	s, cfg, err := p.newStage(kind, workers, allowed, opts)
	out = output[R](p, s, cfg.buf, &err)
	p.describe(s, func(s *stage) { s.queue = queueOf(out) })
	switch {
	case err != nil:
	case workers < 1 || workers > maxWorkers:
		err = p.invalid(s, "workers = %d, must be in [1, %d]", workers, maxWorkers)
	case bad != "":
		err = p.invalid(s, "%s", bad)
	default:
		if adopted, ok = input(p, s, in); !ok {
			err = p.invalid(s, "input channel must not be nil")
		}
	}
	if err != nil {
		close(out)
		return s, cfg, out, inlet[T]{}, false
	}
	return s, cfg, out, adopted, true
}

// split registers a one-input, n-output stage.
func split[T any](p *Pipeline, kind string, in <-chan T, n int, bad string) ([]chan T, *stage, inlet[T], bool) {
	outs := make([]chan T, min(max(n, 0), maxWorkers))
	if p == nil {
		for i := range outs {
			outs[i] = make(chan T)
			close(outs[i])
		}
		return outs, nil, inlet[T]{}, false
	}
	s, cfg, err := p.newStage(kind, 1, optsBasic, nil)
	if err == nil && n > maxWorkers {
		err = p.invalid(s, "n = %d, must be in [1, %d]", n, maxWorkers)
		outs = nil
	}
	for i := range outs {
		outs[i] = output[T](p, s, cfg.buf, &err)
	}
	p.describe(s, func(s *stage) { s.queue = queueOf(outs...) })
	var adopted inlet[T]
	switch {
	case err != nil:
	case n < 1:
		err = p.invalid(s, "n = %d, must be >= 1", n)
	case bad != "":
		err = p.invalid(s, "%s", bad)
	default:
		var ok bool
		if adopted, ok = input(p, s, in); !ok {
			err = p.invalid(s, "input channel must not be nil")
		}
	}
	if err != nil {
		for _, o := range outs {
			close(o)
		}
		return outs, s, inlet[T]{}, false
	}
	return outs, s, adopted, true
}

func readOnly[T any](chs []chan T) []<-chan T {
	r := make([]<-chan T, len(chs))
	for i, c := range chs {
		r[i] = c
	}
	return r
}
