package natsjs

import (
	"context"
	"fmt"

	"github.com/ec0f1147/pipeline"
)

// Map runs fn on the Value of every message of in with workers goroutines,
// as [pipeline.FanOut] does, and sends a Msg holding the result and the same
// message handle, in completion order. It settles nothing on success: the
// message travels on with its new value to the next stage and the sink.
//
// When fn fails (after the [pipeline.Retry] attempts, if that option is
// given) the message is Nak'ed with the consumer's [Backoff] delay so that
// the server delivers it again, unless it has been delivered [MaxDeliveries]
// times: then it is published to the dead-letter subject with the error in
// the [HeaderError] header and terminated. A panic in fn is such a failure
// too (it does not fail the pipeline: a message that always panics must not
// stop every worker it reaches). Neither fails the pipeline; both are counted
// in [Consumer.Stats] and in the stage's Errors.
//
// Options are the pipeline's (Name, BufferSize, Timeout, Retry, Limit);
// an OnError option is overridden, since failures are settled as above.
// An error fn returns after the pipeline was cancelled settles nothing.
// Cancel and Stop behave as in FanOut. workers < 1, a nil fn or a nil in is
// an invalid argument.
func Map[T, R any](p *pipeline.Pipeline, in <-chan *Msg[T], workers int, fn func(context.Context, T) (R, error), opts ...pipeline.StageOption) <-chan *Msg[R] {
	var call func(context.Context, *Msg[T]) (*Msg[R], error)
	if fn != nil {
		call = func(ctx context.Context, m *Msg[T]) (*Msg[R], error) {
			r, err := protect(ctx, fn, m.Value)
			if err != nil {
				return nil, &itemFailure{err: err}
			}
			if same, ok := any(m).(*Msg[R]); ok {
				// T is R: the item is this stage's to pass on, so its Msg is too.
				same.Value = r
				return same, nil
			}
			return &Msg[R]{Value: r, d: m.d}, nil
		}
	}
	all := make([]pipeline.StageOption, 0, len(opts)+2)
	all = append(all, pipeline.Name("natsjs.map"))
	all = append(all, opts...)
	all = append(all, pipeline.OnError(settleFailure))
	return pipeline.FanOut(p, in, workers, call, all...)
}

// ForEach calls fn on the Value of every message of in with workers
// goroutines and acks each message once fn has returned nil for it (the acks
// go out in groups, as in [Ack]); then it returns the pipeline's result, as
// [pipeline.ForEach] does. It is one stage, "natsjs.foreach" (a
// [pipeline.ForEach] whose workers gather the acks themselves): it does what
// [Ack] after [Map] does with one goroutine hand-off less per message. Given
// a BufferSize option (which sized Map's output when ForEach was those two
// stages), it is still [Map] then [Ack]. A failure of fn
// is settled as in [Map] (a later retry, then the dead letters) and does not
// fail the pipeline. Options are as in Map. If the pipeline ends cleanly but
// a message of one of its Sources was never settled, ForEach Naks it and
// returns an error wrapping [ErrUnsettled].
func ForEach[T any](p *pipeline.Pipeline, in <-chan *Msg[T], workers int, fn func(context.Context, T) error, opts ...pipeline.StageOption) error {
	var wrapped func(context.Context, T) (struct{}, error)
	if fn != nil {
		wrapped = func(ctx context.Context, v T) (struct{}, error) { return struct{}{}, fn(ctx, v) }
	}
	if !sinkOptions(opts) {
		// BufferSize, which a sink has no output for: the two stages, as
		// before ForEach was one.
		opts = append([]pipeline.StageOption{pipeline.Name("natsjs.foreach")}, opts...)
		return Ack(p, Map(p, in, workers, wrapped, opts...))
	}
	var call func(context.Context, *Msg[T]) error
	batch := newAcks()
	if fn != nil {
		// One stage: the worker that handled a message gathers its ack
		// itself, with no hand-off to a sink goroutine of its own.
		call = func(ctx context.Context, m *Msg[T]) error {
			if _, err := protect(ctx, wrapped, m.Value); err != nil {
				return &itemFailure{err: err}
			}
			batch.add(m.d)
			return nil
		}
	}
	runsOf(p).checkAtEnd(p, batch.close) // the gathered acks go before the check
	all := make([]pipeline.StageOption, 0, len(opts)+2)
	all = append(all, pipeline.Name("natsjs.foreach"))
	all = append(all, opts...)
	all = append(all, pipeline.OnError(settleFailure))
	return pipeline.ForEach(p, in, workers, call, all...)
}

// settleFailure is the OnError handler of natsjs stages: every failure skips
// the item, and the item's Discard settles its message as a failure.
func settleFailure(*pipeline.StageError) error { return nil }

// protect calls fn, turning a panic into an error.
func protect[T, R any](ctx context.Context, fn func(context.Context, T) (R, error), v T) (r R, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("panic: %v", x)
		}
	}()
	return fn(ctx, v)
}

// sinkOptions reports whether opts are all options a sink
// ([pipeline.ForEach]) accepts, by building one on an empty input in a
// pipeline of its own.
func sinkOptions(opts []pipeline.StageOption) bool {
	if len(opts) == 0 {
		return true
	}
	probe := pipeline.New(context.Background())
	in := make(chan struct{})
	close(in)
	return pipeline.ForEach(probe, in, 1, func(context.Context, struct{}) error { return nil }, opts...) == nil
}
