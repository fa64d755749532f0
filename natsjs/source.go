package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

// drainWait bounds how long Stop waits for the messages still in flight from
// the server to the client, to hand them back.
const drainWait = 2 * time.Second

// Source is a pipeline source that reads the JetStream consumer c: it decodes
// each message with decode and emits it as a [*Msg] whose Value is the
// result, in the order the server delivers them. It runs until the pipeline
// is stopped or cancelled.
//
// Flow control: it takes a message from the client's buffer only when it can
// emit it, and the client asks the server for more ([Prefetch] at a time) only
// then, so the worker holds at most Prefetch un-acked messages besides those
// in the pipeline's buffers and workers.
//
// A message that decode rejects never enters the pipeline: it is published to
// the dead-letter subject with the error in a header and terminated. A lost
// connection is waited out (the client reconnects and the Source pulls again).
// A closed connection or a deleted consumer fails the pipeline with an error
// that wraps the client's.
//
// On [pipeline.Pipeline.Stop] the Source stops pulling, hands back (Naks) the
// messages it has fetched but not emitted, and ends; the items already in the
// pipeline go on to the sink. On cancel it ends at once and settles nothing:
// the server delivers the un-acked messages again after AckWait.
//
// opts are the pipeline's stage options that fit a source (Name, BufferSize).
// A nil c or decode is an invalid argument.
func Source[T any](p *pipeline.Pipeline, c *Consumer, decode func(data []byte) (T, error), opts ...pipeline.StageOption) <-chan *Msg[T] {
	if c == nil || decode == nil {
		return failed[*Msg[T]](p, "Source", "nil Consumer or decode")
	}
	r := newRun()
	runsOf(p).add(r)
	opts = append([]pipeline.StageOption{pipeline.Name("natsjs.source")}, opts...)
	return pipeline.Produce(p, func(ctx context.Context, emit func(*Msg[T]) error) error {
		// A missed heartbeat (a pull request lost on the way, a server under
		// load) is not an error: the iterator then asks for messages again.
		it, err := c.cons.Messages(jetstream.PullMaxMessages(c.prefetch),
			jetstream.WithMessagesErrOnMissingHeartbeat(false))
		if err != nil {
			return fmt.Errorf("natsjs: source %s: %w", c.name, err)
		}
		defer it.Stop()
		for {
			raw, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				if ctx.Err() != nil {
					return c.endRun(p, it, ctx.Err())
				}
				return fmt.Errorf("natsjs: source %s: %w", c.name, err)
			}
			d := c.receive(raw, r)
			v, err := decode(raw.Data())
			if err != nil {
				c.stats.poison.Add(1)
				d.fail(fmt.Errorf("natsjs: decode: %w", err), true)
				continue
			}
			if err := emit(&Msg[T]{Value: v, d: d}); err != nil {
				if errors.Is(err, pipeline.ErrStopped) {
					d.release()
				}
				return c.endRun(p, it, err)
			}
		}
	}, opts...)
}

// receive starts tracking a message taken from the server.
func (c *Consumer) receive(raw jetstream.Msg, r *run) *delivery {
	d := &delivery{raw: raw, c: c}
	n, ok := numDelivered(raw.Reply())
	if !ok {
		n = max(d.metadata().NumDelivered, 1)
	}
	d.delivered = n
	c.stats.received.Add(1)
	if n > 1 {
		c.stats.redelivered.Add(1)
	}
	c.stats.inFlight.Add(1)
	r.track(d)
	return d
}

// endRun ends a Source. After Stop (the pipeline's context is still live) it
// hands back every message the client fetched and the pipeline never got;
// after a cancel it leaves them to the server's AckWait, as a crash would.
func (c *Consumer) endRun(p *pipeline.Pipeline, it jetstream.MessagesContext, cause error) error {
	if p.Context().Err() != nil {
		return cause
	}
	it.Drain()
	for {
		raw, err := it.Next(jetstream.NextMaxWait(drainWait))
		if err != nil {
			return nil
		}
		c.stats.received.Add(1)
		if raw.Nak() != nil {
			c.stats.settleErrors.Add(1)
			continue
		}
		c.stats.released.Add(1)
	}
}

// failed returns the closed output of a stage given a bad argument, after
// failing the pipeline with an error that names it.
func failed[T any](p *pipeline.Pipeline, stage, what string) <-chan T {
	err := invalid(stage, what)
	return pipeline.Produce(p, func(context.Context, func(T) error) error { return err },
		pipeline.Name("natsjs."+stage))
}

// DecodeJSON decodes a message's payload as JSON into a T: the decode
// function for a [Source] whose producers publish JSON.
func DecodeJSON[T any](data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// EncodeJSON encodes v as JSON: the encode function for [Publish].
func EncodeJSON[T any](v T) ([]byte, error) { return json.Marshal(v) }
