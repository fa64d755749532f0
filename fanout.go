package pipeline

// This file holds the worker pools that send results in completion order:
// FanOut (one result per item) and FlatMap (any number per item).

import "context"

// FanOut runs fn on every item of in with workers goroutines and sends each
// result on its output, in completion order (use [FanOutOrdered] to keep input
// order). At most workers calls run at once, fewer if a shared [Limit] says so.
//
// fn gets the pipeline's context (with a deadline under [Timeout]); an error
// from fn fails the pipeline as a [*StageError] naming the stage and item,
// unless [OnError] skips it or [DeadLetters] take it; [Retry] re-runs it first. A panic in fn fails the
// pipeline with a [*PanicError]. On cancel the workers stop taking items and
// the output is closed; on [Pipeline.Stop] they finish every item still coming.
// workers < 1, a nil fn or a nil in is an invalid argument.
func FanOut[T, R any](p *Pipeline, in <-chan T, workers int, fn func(context.Context, T) (R, error), opts ...StageOption) <-chan R {
	return build(p, callSpec("fanout", workers, fn == nil), opts, func(n *node[T, R]) {
		c := n.newCaller(fn)
		n.each(func(t *counters, v T) bool { return callAndSend(c, t, n.out, v) })
	}, in).out
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
	return build(p, callSpec("flatmap", workers, fn == nil), opts, func(n *node[T, R]) {
		out := n.out
		// Each worker has its own emit, bound to its own counters. While a
		// call's emit waits for room downstream, the call gives back its Limit
		// slot (if any): a downstream stage sharing the limiter may need it.
		n.eachWith(func(t *counters) func(T) bool {
			var slot *heldSlot // the current call's Limit slot
			emit := func(r R) error {
				if p.cancelled() && p.gaveUp() {
					return context.Cause(p.ctx)
				}
				if p.track != nil { // under a Checkpoint: r goes with its parent's ticket
					if err := slot.yield(p.ctx, func() bool { return sendHeld(p, t, out, r) }); err != nil {
						p.interrupted()
						return err
					}
				} else {
					select {
					case out <- r:
					default:
						if err := slot.yield(p.ctx, func() bool { return send(p, out, r) }); err != nil {
							p.interrupted()
							return err
						}
					}
				}
				t.out.Add(1)
				return nil
			}
			c := new(caller[T, struct{}])
			*c = makeCaller(p, &n.s, n.cfg, func(ctx context.Context, v T) (struct{}, error) {
				slot, _ = ctx.Value(heldKey{}).(*heldSlot)
				return struct{}{}, fn(ctx, v, emit)
			})
			return func(v T) bool {
				start := t.callStart(p)
				_, err := c.call(t, v)
				callEnd(p, &n.s, t, start, v, err)
				if err != nil {
					return c.settle(t, v, err)
				}
				return true
			}
		})
	}, in).out
}
