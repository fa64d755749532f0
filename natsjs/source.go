package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// drainWait bounds how long Stop waits for the messages still in flight
	// from the server to the client, to hand them back.
	drainWait = 2 * time.Second
	// pullHeartbeat is how often the server says a pull request is still
	// open while it has nothing to deliver. Two missed in a row and the
	// client pulls again: a pull request lost between client and server
	// (seen now and then with small batches on a loaded machine, with a plain
	// nats.go loop as well) stalls a Source 10s instead of nats.go's default
	// 30s.
	pullHeartbeat = 5 * time.Second
)

// Source is a pipeline source that reads the JetStream consumer c: it decodes
// each message with decode and emits it as a [*Msg] whose Value is the
// result, in the order the server delivers them. It runs until the pipeline
// is stopped or cancelled.
//
// Messages come in pull batches of [Prefetch] and are emitted straight from
// the client's delivery goroutine (nats.go's Consume), with no goroutine of
// the Source's own in between. Flow control: the client asks the server for
// more only as the pipeline takes them (when half the batch has been
// emitted), so the worker holds at most Prefetch un-acked messages besides
// those in the pipeline's buffers and workers.
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
		return c.consume(ctx, p, func(raw jetstream.Msg) error {
			x := new(received[T]) // the Msg and its delivery, in one allocation
			d := &x.d
			c.receive(d, raw, r)
			v, err := decode(raw.Data())
			if err != nil {
				c.stats.poison.Add(1)
				d.fail(fmt.Errorf("natsjs: decode: %w", err), true)
				return nil
			}
			x.m.Value, x.m.d = v, d
			err = emit(&x.m)
			if errors.Is(err, pipeline.ErrStopped) {
				d.release()
			}
			return err
		})
	}, opts...)
}

// consume runs one Source until ctx (the Source's) ends or the consumer
// fails for good. nats.go's Consume calls handle on its delivery goroutine
// for every message, one at a time and in order, and asks the server for
// the next batch once enough of them have returned, so the pipeline's
// backpressure reaches the server directly. handle emits the message; after
// Stop it hands it back, after a cancel it leaves it.
//
// consume never returns while handle runs, and handle is not called after
// consume has returned: the Source's output is closed only then. A message
// the client still delivers after that is handed back after Stop (counted
// as received and released) and ignored after a cancel.
func (c *Consumer) consume(ctx context.Context, p *pipeline.Pipeline, handle func(jetstream.Msg) error) error {
	var (
		mu    sync.Mutex // held while handle runs
		ended bool       // under mu: the Source has returned
		fatal = make(chan error, 1)
	)
	onMsg := func(raw jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			_ = handle(raw)
			return
		}
		if p.Context().Err() == nil {
			c.handBack(raw)
		}
	}
	onErr := func(_ jetstream.ConsumeContext, err error) {
		if terminal(err) {
			select {
			case fatal <- err:
			default:
			}
		}
	}
	cc, err := c.cons.Consume(onMsg, jetstream.PullMaxMessages(c.prefetch),
		jetstream.PullHeartbeat(pullHeartbeat), jetstream.ConsumeErrHandler(onErr))
	if err != nil {
		return fmt.Errorf("natsjs: source %s: %w", c.name, err)
	}
	end := func() {
		mu.Lock()
		ended = true
		mu.Unlock()
	}
	select {
	case err := <-fatal:
		cc.Stop()
		end()
		return fmt.Errorf("natsjs: source %s: %w", c.name, err)
	case <-ctx.Done():
	}
	if p.Context().Err() != nil {
		// Cancelled: settle nothing, as a crash would.
		cc.Stop()
		end()
		return ctx.Err()
	}
	// Stopped: handle hands back every message still buffered in the client
	// and those still on their way from the server.
	cc.Drain()
	t := time.NewTimer(drainWait)
	defer t.Stop()
	select {
	case <-cc.Closed():
	case <-t.C:
		cc.Stop()
	}
	end()
	return nil
}

// handBack Naks a message that arrived after its Source ended on Stop.
func (c *Consumer) handBack(raw jetstream.Msg) {
	c.stats.received.Add(1)
	if raw.Nak() != nil {
		c.stats.settleErrors.Add(1)
		return
	}
	c.stats.released.Add(1)
}

// terminal reports whether an error reported by Consume ends the
// consumption for good; the others (a missed heartbeat, a reconnect) the
// client recovers from by itself.
func terminal(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBadRequest) ||
		errors.Is(err, jetstream.ErrConnectionClosed)
}

// received is a message as a Source emits it, with its delivery.
type received[T any] struct {
	m Msg[T]
	d delivery
}

// receive starts tracking a message taken from the server, in d.
func (c *Consumer) receive(d *delivery, raw jetstream.Msg, r *run) {
	d.raw, d.c = raw, c
	n, ok := numDelivered(raw.Reply())
	if !ok {
		n = max(d.metadata().NumDelivered, 1)
	}
	d.delivered = n
	c.stats.received.Add(1)
	if n > 1 {
		c.stats.redelivered.Add(1)
	}
	r.track(d)
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
