package natsjs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// errPublishTimeout is the failure of a downstream publish whose
// acknowledgement did not come in time.
var errPublishTimeout = errors.New("natsjs: no acknowledgement for the downstream publish")

// Ack is the sink that acks every message of in once it arrives: the item
// has been fully handled by the stages before. Then it returns the
// pipeline's result, as [pipeline.Drain] does.
//
// Acks are sent in arrival order and in groups: a message that arrives waits
// until [AckGroupSize] have gathered or [AckGroupDelay] has passed, and then
// all their acks go out together, so the connection writes them at once. An ack is sent without
// waiting for the server's reply, as nats.go's Msg.Ack does: a lost ack (or a
// crash before a gathered ack was sent) means one more delivery, never a lost
// message.
//
// On Stop every item still in the pipeline arrives and is acked before Ack
// returns. On cancel or failure the messages that had arrived are acked
// (they were handled) and the others stay un-acked: the server delivers them
// again after AckWait. If the pipeline ends cleanly but a message of one of
// its Sources was never settled (a stage lost its item), Ack Naks it and
// returns an error wrapping [ErrUnsettled]. A nil in is an invalid argument.
func Ack[T any](p *pipeline.Pipeline, in <-chan *Msg[T]) error {
	rs := runsOf(p)
	batch := newAcks()
	rs.checkAtEnd(p, batch.close) // the gathered acks go before the check
	return pipeline.ForEach(p, in, 1, func(_ context.Context, m *Msg[T]) error {
		batch.add(m.d)
		return nil
	}, pipeline.Name("natsjs.ack"))
}

// The acks of the natsjs sinks go out in groups: a handled message waits
// until AckGroupSize have gathered or AckGroupDelay has passed since the
// first, then all their acks are sent together. A process that dies holds up
// to AckGroupSize handled messages whose acks were not sent yet per sink
// ([Ack], [Publish]), or per worker of a [ForEach] and one more group (its
// workers send the groups they complete while the others gather the next):
// count them in the messages a crash can have handled twice.
const (
	AckGroupSize  = 64               // most acks sent together
	AckGroupDelay = time.Millisecond // longest wait of a handled message for its ack
)

// acks gathers the messages a sink has handled and sends their acks
// together, once AckGroupSize have gathered or the first has waited
// AckGroupDelay: the connection then writes them in one go instead of one
// write each, and the server reads them so. A gathered message has been handled; a crash
// before its ack is sent means one more delivery, as for an ack lost on the
// way. Safe for concurrent use.
type acks struct {
	mu     sync.Mutex
	held   []*delivery
	spare  [][]*delivery // emptied groups, for reuse
	timer  *time.Timer
	closed bool
}

func newAcks() *acks {
	a := &acks{held: make([]*delivery, 0, AckGroupSize)}
	a.timer = time.AfterFunc(time.Hour, a.flush)
	a.timer.Stop()
	return a
}

// add gathers d, a handled message; once closed, it acks d at once. The
// caller that completes a group sends it, outside the lock, so that the
// other workers of a sink with several go on gathering meanwhile. add is
// called by the sinks' stage goroutines only, which have all returned when
// close runs: no group is being sent outside the lock then.
func (a *acks) add(d *delivery) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		d.ack()
		return
	}
	a.held = append(a.held, d)
	var full []*delivery
	switch len(a.held) {
	case AckGroupSize:
		a.timer.Stop()
		full = a.held
		if n := len(a.spare); n > 0 {
			a.held, a.spare = a.spare[n-1], a.spare[:n-1]
		} else {
			a.held = make([]*delivery, 0, AckGroupSize)
		}
	case 1:
		a.timer.Reset(AckGroupDelay)
	}
	a.mu.Unlock()
	if full == nil {
		return
	}
	ackAll(full)
	clear(full)
	a.mu.Lock()
	if len(a.spare) < 2 {
		a.spare = append(a.spare, full[:0])
	}
	a.mu.Unlock()
}

func (a *acks) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sendLocked()
}

func (a *acks) sendLocked() {
	ackAll(a.held)
	clear(a.held)
	a.held = a.held[:0]
}

// close sends the acks still gathered; add acks at once from then on.
func (a *acks) close() {
	a.timer.Stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.sendLocked()
}

// Publish is the sink that publishes the Value of every message of in,
// encoded by encode, to subject on the JetStream js, and acks the upstream
// message only once the server has confirmed that it stored the downstream
// one: pipelines chain across processes and streams without a gap. The
// upstream acks go out in groups, as in [Ack].
//
// Publishes are asynchronous, at most maxInFlight of them awaiting the
// server's acknowledgement at once (the sink blocks, and so its upstream,
// when that many are out). Each carries the upstream message's [Msg.ID] as
// its Nats-Msg-Id, so a message delivered twice upstream is stored once
// downstream, within the downstream stream's duplicate window.
//
// Each also carries the item's trace ([Msg.SpanContext]) in the W3C
// traceparent and tracestate headers, so that a [Source] in another process
// continues it. With the otel module's Instrument on the pipeline, that is
// the span of the item's "natsjs.publish" call (the encoding, a stage of its
// own) if that call was sampled, else the span of its last sampled call; an
// item with no trace is published without those headers.
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
	encoded := pipeline.FanOut(p, in, 1, func(_ context.Context, m *Msg[T]) (outgoing, error) {
		data, err := encode(m.Value)
		if err != nil {
			return outgoing{}, &itemFailure{err: fmt.Errorf("natsjs: encode: %w", err), permanent: true}
		}
		return outgoing{d: m.d, data: data}, nil
	}, pipeline.Name("natsjs.publish"), pipeline.OnError(settleFailure))
	// The publish is a stage of its own after the encoding, so that the
	// trace context it writes is that of the "natsjs.publish" call's span,
	// which an OpenTelemetry adapter records after the call returns.
	slots := make(chan struct{}, maxInFlight)
	sent := pipeline.FanOut(p, encoded, 1, func(ctx context.Context, o outgoing) (pending, error) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return pending{}, context.Cause(ctx)
		}
		msg := &nats.Msg{Subject: subject, Data: o.data, Header: traceHeader(o.d.spanContext())}
		fut, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(o.d.id()))
		if err != nil {
			<-slots
			return pending{}, &itemFailure{err: fmt.Errorf("natsjs: publish: %w", err)}
		}
		return pending{d: o.d, fut: fut}, nil
	}, pipeline.Name("natsjs.send"), pipeline.BufferSize(maxInFlight), pipeline.OnError(settleFailure))
	batch := newAcks()
	runsOf(p).checkAtEnd(p, batch.close) // the gathered acks go before the check
	return pipeline.ForEach(p, sent, 1, func(ctx context.Context, pd pending) error {
		defer func() { <-slots }()
		pd.confirm(ctx, batch)
		return nil
	}, pipeline.Name("natsjs.confirm"))
}

// outgoing is an encoded value on its way to the downstream publish. It
// settles its message when a stage sets it aside, and carries the message's
// trace, so that the span of its publish call belongs to the item's trace.
type outgoing struct {
	d    *delivery
	data []byte
}

func (o outgoing) Discard(reason error)           { o.d.discard(reason) }
func (o outgoing) SpanContext() trace.SpanContext { return o.d.spanContext() }

// pending is a downstream publish awaiting the server's acknowledgement.
type pending struct {
	d   *delivery
	fut jetstream.PubAckFuture
}

// SpanContext makes the span of the wait for the acknowledgement part of the
// item's trace.
func (pd pending) SpanContext() trace.SpanContext { return pd.d.spanContext() }

// confirm waits for the publish's acknowledgement and settles the upstream
// message: acked (through batch) once stored downstream, a failure
// otherwise. A cancel leaves it unsettled.
func (pd pending) confirm(ctx context.Context, batch *acks) {
	ok := func() {
		pd.d.c.stats.published.Add(1)
		batch.add(pd.d)
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
