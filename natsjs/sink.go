package natsjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errPublishTimeout is the failure of a downstream publish whose
// acknowledgement did not come in time.
var errPublishTimeout = errors.New("natsjs: no acknowledgement for the downstream publish")

// Ack is the sink that acks every message of in, in arrival order, once it
// arrives: the item has been fully handled by the stages before. Then it
// returns the pipeline's result, as [pipeline.Drain] does.
//
// On Stop every item still in the pipeline arrives and is acked before Ack
// returns. On cancel or failure the messages not acked by then stay un-acked
// and the server delivers them again after AckWait. If the pipeline ends
// cleanly but a message of one of its Sources was never settled (a stage lost
// its item), Ack Naks it and returns an error wrapping [ErrUnsettled].
// An ack is sent without waiting for the server's reply, as nats.go's
// Msg.Ack does: a lost ack means one more delivery, never a lost message.
// A nil in is an invalid argument.
func Ack[T any](p *pipeline.Pipeline, in <-chan *Msg[T]) error {
	runsOf(p).checkAtEnd(p)
	return pipeline.ForEach(p, in, 1, func(_ context.Context, m *Msg[T]) error {
		m.d.ack()
		return nil
	}, pipeline.Name("natsjs.ack"))
}

// Publish is the sink that publishes the Value of every message of in,
// encoded by encode, to subject on the JetStream js, and acks the upstream
// message only once the server has confirmed that it stored the downstream
// one: pipelines chain across processes and streams without a gap.
//
// Publishes are asynchronous, at most maxInFlight of them awaiting the
// server's acknowledgement at once (the sink blocks, and so its upstream,
// when that many are out). Each carries the upstream message's [Msg.ID] as
// its Nats-Msg-Id, so a message delivered twice upstream is stored once
// downstream, within the downstream stream's duplicate window.
//
// A publish that fails or is not acknowledged within 30s is a failure of the
// item, settled as in [Map] (Nak'ed for a later retry, then dead-lettered); a
// value that encode rejects is dead-lettered at once. Neither fails the
// pipeline. Stop, cancel and the unsettled check behave as in [Ack]: on Stop
// every publish still out is awaited. A nil js, an empty subject,
// maxInFlight < 1, a nil encode or a nil in is an invalid argument.
func Publish[T any](p *pipeline.Pipeline, in <-chan *Msg[T], js jetstream.JetStream, subject string, maxInFlight int, encode func(T) ([]byte, error)) error {
	if js == nil || subject == "" || maxInFlight < 1 || encode == nil {
		what := fmt.Sprintf("nil JetStream, empty subject, maxInFlight %d < 1 or nil encode", maxInFlight)
		return pipeline.Drain(p, failed[struct{}](p, "Publish", what))
	}
	runsOf(p).checkAtEnd(p)
	slots := make(chan struct{}, maxInFlight)
	sent := pipeline.FanOut(p, in, 1, func(ctx context.Context, m *Msg[T]) (pending, error) {
		data, err := encode(m.Value)
		if err != nil {
			return pending{}, &itemFailure{err: fmt.Errorf("natsjs: encode: %w", err), permanent: true}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return pending{}, context.Cause(ctx)
		}
		fut, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data}, jetstream.WithMsgID(m.d.id()))
		if err != nil {
			<-slots
			return pending{}, &itemFailure{err: fmt.Errorf("natsjs: publish: %w", err)}
		}
		return pending{d: m.d, fut: fut}, nil
	}, pipeline.Name("natsjs.publish"), pipeline.BufferSize(maxInFlight), pipeline.OnError(settleFailure))
	return pipeline.ForEach(p, sent, 1, func(ctx context.Context, pd pending) error {
		defer func() { <-slots }()
		pd.confirm(ctx)
		return nil
	}, pipeline.Name("natsjs.confirm"))
}

// pending is a downstream publish awaiting the server's acknowledgement.
type pending struct {
	d   *delivery
	fut jetstream.PubAckFuture
}

// confirm waits for the publish's acknowledgement and settles the upstream
// message: acked once stored downstream, a failure otherwise. A cancel
// leaves it unsettled.
func (pd pending) confirm(ctx context.Context) {
	ok := func() {
		pd.d.c.stats.published.Add(1)
		pd.d.ack()
	}
	select {
	case <-pd.fut.Ok():
		ok()
		return
	default:
	}
	t := time.NewTimer(settleTimeout)
	defer t.Stop()
	select {
	case <-pd.fut.Ok():
		ok()
	case err := <-pd.fut.Err():
		pd.d.fail(fmt.Errorf("natsjs: publish: %w", err), false)
	case <-t.C:
		pd.d.fail(errPublishTimeout, false)
	case <-ctx.Done():
	}
}
