package pipeline

// This file holds the sinks, which consume a pipeline's last output and
// return its result: ForEach (a worker pool with no output), and Collect,
// Reduce, First, Drain and All, which run on the caller's goroutine.

import (
	"context"
	"iter"
)

// Sinks consume their input to its end, then return [Pipeline.Wait]: when a
// sink returns, every goroutine of the pipeline has returned. A sink that runs
// on the caller's goroutine counts as part of the pipeline while it runs:
// Wait and Shutdown called elsewhere wait for it.

// inlineSink is build for a sink that runs on its caller's goroutine
// (Collect, Reduce, First, Drain, All): it adopts in, counted as one of its
// readers, but registers no stage and starts nothing. A sink may read what
// the stages of an ended pipeline left. If the error is not nil (a nil p,
// bad, the sink's own argument problem, or a nil in), the pipeline has
// failed with it.
//
// A sink that runs at once (all but All, whose loop may start later or never)
// asks to enter: it counts as part of the pipeline from before it adopts its
// input, so that a Wait or Shutdown elsewhere cannot end the pipeline in
// between and miss a failure of the sink. leave.leave ends that.
func inlineSink[T any](p *Pipeline, kind string, in <-chan T, bad string, enter bool) (src inlet[T], leave sinkLeave, err error) {
	if p == nil {
		return inlet[T]{}, leave, errNilPipeline()
	}
	if enter {
		leave = p.enterSink()
	}
	if in != nil {
		p.mu.Lock()
		src, _ = adopt(p, in)
		p.mu.Unlock()
	}
	p.seal() // a sink: the pipeline is built
	switch {
	case bad != "":
		err = p.refuse(kind, bad)
	case in == nil:
		err = p.refuse(kind, "input channel must not be nil")
	}
	return src, leave, err
}

// Collect gathers every item of in, in arrival order, and returns them with
// the pipeline's result ([Pipeline.Wait]). On failure it returns what arrived
// before the pipeline stopped, and the error. A nil in is an invalid argument.
func Collect[T any](p *Pipeline, in <-chan T) ([]T, error) {
	src, leave, err := inlineSink(p, "collect", in, "", true)
	if err != nil {
		leave.leave()
		return nil, p.Wait()
	}
	var out []T
	for {
		v, k, ok := src.receiveTagged(p)
		if !ok {
			break
		}
		out = append(out, v)
		k.release() // handled: collected (k is nil without a Checkpoint)
	}
	leave.leave()
	return out, p.Wait()
}

// ForEach calls fn on every item of in with workers goroutines, in no
// particular order, then returns the pipeline's result ([Pipeline.Wait]). At
// most workers calls run at once. Errors, panics, options ([Timeout], [Retry],
// [OnError], [Limit]), cancel and Stop behave as in [FanOut]. workers < 1, a
// nil fn or a nil in is an invalid argument.
func ForEach[T any](p *Pipeline, in <-chan T, workers int, fn func(context.Context, T) error, opts ...StageOption) error {
	sp := callSpec("foreach", workers, fn == nil)
	sp.outs, sp.allowed = 0, optsSink
	build(p, sp, opts, func(n *node[T, struct{}]) {
		c := n.newCaller(func(ctx context.Context, v T) (struct{}, error) {
			return struct{}{}, fn(ctx, v)
		})
		n.each(func(t *counters, v T) bool {
			start := t.callStart(p)
			_, err := c.call(t, v)
			callEnd(p, &n.s, t, start, v, err)
			if err != nil {
				return c.settle(t, v, err)
			}
			t.out.Add(1) // handled: counted as out
			return true
		})
	}, in)
	return p.Wait()
}

// Reduce folds every item of in into an accumulator, starting from init, in
// arrival order, on the calling goroutine, and returns it with the pipeline's
// result ([Pipeline.Wait]). A panic in fn fails the pipeline with a
// [*PanicError] and returns the accumulator as it was. A nil fn or a nil in
// is an invalid argument.
func Reduce[T, A any](p *Pipeline, in <-chan T, init A, fn func(A, T) A) (A, error) {
	src, leave, err := inlineSink(p, "reduce", in, mustNotBeNil(fn == nil, "fn"), true)
	if err != nil {
		leave.leave()
		return init, p.Wait()
	}
	acc := init
	func() {
		defer leave.leave()
		var cur T
		defer func() {
			if x := recover(); x != nil {
				p.fail(&StageError{Stage: "reduce", Item: cur, Err: panicError(x)})
			}
		}()
		for {
			v, k, ok := src.receiveTagged(p)
			if !ok {
				return
			}
			cur = v
			acc = fn(acc, v)
			k.release()
		}
	}()
	return acc, p.Wait()
}

// First returns the first item of in and true, then stops the pipeline: every
// stage upstream is cancelled, and that early exit is not a failure, so the
// error is nil unless something failed before. If in closes with no item,
// First returns the zero value, false and the pipeline's result. A nil in is
// an invalid argument.
func First[T any](p *Pipeline, in <-chan T) (T, bool, error) {
	var zero T
	src, leave, err := inlineSink(p, "first", in, "", true)
	if err != nil {
		leave.leave()
		return zero, false, p.Wait()
	}
	v, k, ok := src.receiveTagged(p)
	if ok {
		k.release()
		p.endEarly()
	}
	leave.leave()
	return v, ok, p.Wait()
}

// Drain reads in to its end, discarding every item, and returns the
// pipeline's result ([Pipeline.Wait]): the sink for pipelines whose last stage
// does the work. A nil in is an invalid argument.
func Drain[T any](p *Pipeline, in <-chan T) error {
	src, leave, err := inlineSink(p, "drain", in, "", true)
	for ok := err == nil; ok; {
		var k *tag
		_, k, ok = src.receiveTagged(p)
		k.release()
	}
	leave.leave()
	return p.Wait()
}

// All returns an iterator over the items of in, in arrival order, for a range
// loop. Breaking out of the loop is an early exit: the pipeline is cancelled,
// which is not a failure. When the loop ends (either way, or by a panic in its
// body) every goroutine of the pipeline has returned; call [Pipeline.Wait]
// afterwards for the pipeline's result. A nil in is an invalid argument: the
// iterator yields nothing and Wait reports it.
func All[T any](p *Pipeline, in <-chan T) iter.Seq[T] {
	src, _, err := inlineSink(p, "all", in, "", false)
	return func(yield func(T) bool) {
		if err != nil {
			return
		}
		leave := p.enterSink()
		ended := false
		defer func() {
			if !ended {
				p.endEarly()
			}
			leave.leave()
			_ = p.Wait()
		}()
		for {
			v, k, ok := src.receiveTagged(p)
			if !ok {
				break
			}
			if !yield(v) {
				return
			}
			k.release()
		}
		ended = true
	}
}

// AllErr is [All] with the pipeline's result: it yields every item of in
// with a nil error, in arrival order, and then, if the pipeline failed, one
// last pair of the zero value and the error [Pipeline.Wait] returns (under
// [CollectErrors], the joined errors). Breaking out of the loop is an early
// exit, as with All: the pipeline is cancelled, which is not a failure, and
// no error pair follows. When the loop ends every goroutine of the pipeline
// has returned. A nil in is an invalid argument: the only pair is the error.
func AllErr[T any](p *Pipeline, in <-chan T) iter.Seq2[T, error] {
	src, _, err := inlineSink(p, "allerr", in, "", false)
	return func(yield func(T, error) bool) {
		var zero T
		if err != nil {
			yield(zero, p.Wait())
			return
		}
		leave := p.enterSink()
		ended, left := false, false
		defer func() {
			if !ended {
				p.endEarly()
			}
			if !left {
				leave.leave()
			}
			_ = p.Wait()
		}()
		for {
			v, k, ok := src.receiveTagged(p)
			if !ok {
				break
			}
			if !yield(v, nil) {
				return
			}
			k.release()
		}
		ended = true
		left = true
		leave.leave()
		if err := p.Wait(); err != nil {
			yield(zero, err)
		}
	}
}
