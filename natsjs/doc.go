// Package natsjs runs pipeline stages across processes over NATS JetStream,
// with at-least-once delivery: several processes consume one durable pull
// consumer, every message is handled at least once even when a process dies,
// and results can be published on to the next stream.
//
// A worker is an ordinary pipeline whose items are [*Msg] values: a message
// taken from JetStream, decoded into a typed Value, and carrying the handle
// that acknowledges it.
//
//	c, err := natsjs.NewConsumer(ctx, js, cons, "jobs.dead")
//	p := pipeline.New(ctx)
//	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[Job])         // <-chan *Msg[Job]
//	done := natsjs.Map(p, jobs, 4, process)                     // <-chan *Msg[Result]
//	err = natsjs.Publish(p, done, js, "results", 64, natsjs.EncodeJSON[Result])
//
// # The acknowledgement rule
//
// A message is settled exactly once, and only when its fate is decided:
//
//   - acked when its item has been fully handled: the sink finished it ([Ack],
//     [ForEach]) or the downstream publish was confirmed by the server
//     ([Publish]);
//   - acked when a stage set its item aside on purpose: [pipeline.Filter]
//     dropped it, [pipeline.DropOnFull] shed it, or a [pipeline.OnError]
//     handler skipped it ([Msg] is a [pipeline.Discarder]);
//   - Nak'ed with a delay ([Backoff]) when the function of [Map] or [ForEach]
//     failed on it, so the server delivers it again later, until it has been
//     delivered [MaxDeliveries] times; then it is published to the dead-letter
//     subject with the error in a header and terminated;
//   - published to the dead-letter subject and terminated at once when it
//     cannot be decoded (a poison message never crash-loops a worker);
//   - Nak'ed at once, unprocessed, when [pipeline.Pipeline.Stop] finds it
//     fetched but not yet in the pipeline, so another worker takes it now.
//
// A crash or a cancellation settles nothing: every message not settled by
// then stays un-acked, and the server delivers it again, to this worker or
// another, once the consumer's AckWait has passed. That is what makes the
// delivery at-least-once: an item may be handled twice (it was handled, but the
// process died before its ack reached the server), never zero times. To have
// the effect of exactly once, make the sink idempotent: [Publish] sets a
// Nats-Msg-Id derived from the upstream stream and sequence, so the next
// stream drops a republished duplicate within its duplicate window; a database
// sink would upsert keyed on the same identity ([Msg.ID]).
//
// The API keeps the wrong thing hard. Items stay [*Msg] from the [Source] to a
// natsjs sink; [Map] transforms the value and carries the handle through;
// the core stages that drop items tell the message. A pipeline that still
// loses a message some other way (a core stage mapping *Msg to another type)
// is caught: when it ends cleanly, the natsjs sink Naks every message left
// unsettled and returns [ErrUnsettled].
//
// # Flow control
//
// The [Source] pulls only as fast as the pipeline drains: it emits from the
// client's delivery goroutine and the client asks the server for the next
// batch only as messages are emitted, so a worker never holds more un-acked
// messages than its [Prefetch] batch plus what the pipeline's buffers and
// workers can take, plus a group of acks being gathered (the sinks send
// their acks in groups of up to [AckGroupSize], so that the connection
// writes them at once). The consumer's MaxAckPending bounds the total across
// all workers on the server side (and Prefetch defaults to half of it); its
// AckWait must be longer than a message takes from the server to the sink,
// prefetch wait included, or it is delivered twice.
//
// # Traces across processes
//
// A [Msg] carries its item's trace ([Msg.SpanContext], [Msg.SetSpanContext]):
// the otel module's Instrument makes the spans of the calls on it children of
// it, and [Publish] writes it into the downstream message's W3C traceparent
// and tracestate headers, which the next process's [Source] reads. A job's
// trace so follows it from process to process. natsjs uses only
// OpenTelemetry's trace and propagation API, not the SDK or the otel module.
package natsjs
