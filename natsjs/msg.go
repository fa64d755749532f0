package natsjs

import (
	"context"
	"errors"
	"fmt"
	"github.com/ec0f1147/pipeline"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Headers set on a dead letter, beside the original message's own headers.
const (
	HeaderError      = "Natsjs-Error"      // why the message was dead-lettered
	HeaderSubject    = "Natsjs-Subject"    // the subject it was published on
	HeaderStream     = "Natsjs-Stream"     // the stream it was stored in
	HeaderSequence   = "Natsjs-Sequence"   // its sequence in that stream
	HeaderDeliveries = "Natsjs-Deliveries" // how many times it was delivered
)

// Msg is one JetStream message in a pipeline: its decoded Value and the
// handle that settles it. A Msg comes from a [Source]; [Map] turns a Msg[T]
// into a Msg[R] that carries the same handle; a natsjs sink ([Ack], [ForEach],
// [Publish]) settles it. Stages may change Value.
//
// Msg is a [pipeline.Discarder]: a core stage that sets it aside on purpose
// ([pipeline.Filter], [pipeline.DropOnFull], a [pipeline.OnError] handler
// that skips it) acks it, so it does not come back. The message is settled
// once: whatever settles it first wins and later attempts do nothing.
// Msgs are made by [Source] and [Map] only; the zero Msg is not usable.
type Msg[T any] struct {
	Value T
	d     *delivery
}

// Subject returns the subject the message was published on.
func (m *Msg[T]) Subject() string { return m.d.raw.Subject() }

// Header returns the message's headers (do not modify them).
func (m *Msg[T]) Header() nats.Header { return m.d.raw.Headers() }

// Data returns the message's payload as it was received, before decoding.
func (m *Msg[T]) Data() []byte { return m.d.raw.Data() }

// Deliveries returns how many times the server has delivered the message,
// this delivery included: more than 1 means it was delivered before, to this
// worker or another, and not acked then.
func (m *Msg[T]) Deliveries() int { return int(m.d.delivered) }

// ID returns "stream:sequence", which names the message uniquely and stays
// the same across redeliveries: the key for an idempotent sink. [Publish]
// sends it downstream as the Nats-Msg-Id.
func (m *Msg[T]) ID() string { return m.d.id() }

// Ack settles the message as done: it is acked and counted in Stats.Acked.
// The natsjs sinks call it for every item they finish; call it yourself only
// where a Msg leaves the pipeline some other way, such as a range over
// [pipeline.All] or [pipeline.First], once the item is fully handled.
func (m *Msg[T]) Ack() { m.d.ack() }

// Discard settles the message of an item that a stage set aside on purpose:
// it is acked (the server will not deliver it again) and counted in
// Stats.Discarded. The core stages call it ([pipeline.Discarder]); a stage of
// your own that drops a Msg calls it too. The one exception is a failure of
// the function of [Map] or [ForEach], which they report through Discard and
// which is Nak'ed for a later retry or dead-lettered instead.
func (m *Msg[T]) Discard(reason error) { m.d.discard(reason) }

func (d *delivery) discard(reason error) {
	var f *itemFailure
	if errors.As(reason, &f) {
		d.fail(f.err, f.permanent)
		return
	}
	if d.claim() {
		d.c.stats.discarded.Add(1)
		d.settle(d.raw.Ack(), &d.c.stats.acked)
	}
}

// itemFailure marks an error of a natsjs stage's function, so that Discard
// can tell it from a deliberate skip. permanent failures (an item that can
// never succeed, such as one that cannot be encoded) go to the dead letters
// at once.
type itemFailure struct {
	err       error
	permanent bool
}

func (f *itemFailure) Error() string { return f.err.Error() }
func (f *itemFailure) Unwrap() error { return f.err }

// delivery is one delivery of one message and the state of its settlement.
type delivery struct {
	raw       jetstream.Msg
	c         *Consumer
	delivered uint64 // how many times the server has delivered it
	done      atomic.Bool
	meta      atomic.Pointer[jetstream.MsgMetadata] // parsed when first needed
	span      *trace.SpanContext                    // the item's trace; nil until first asked for
	// the run that tracks it, and its neighbours in the run's list
	r          *run
	prev, next *delivery
}

// metadata parses the message's JetStream metadata when first needed (two
// goroutines asking at once may both parse it; one result is kept).
func (d *delivery) metadata() *jetstream.MsgMetadata {
	if m := d.meta.Load(); m != nil {
		return m
	}
	m, err := d.raw.Metadata()
	if err != nil {
		// Only a message that is not from JetStream has none; the consumer
		// API never delivers one.
		m = &jetstream.MsgMetadata{NumDelivered: d.delivered}
	}
	d.meta.CompareAndSwap(nil, m)
	return d.meta.Load()
}

func (d *delivery) id() string {
	m := d.metadata()
	return m.Stream + ":" + strconv.FormatUint(m.Sequence.Stream, 10)
}

// numDelivered reads the delivery count from a JetStream ack subject,
// $JS.ACK.<stream>.<consumer>.<delivered>.… (9 tokens) or
// $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.… (11 or more),
// without allocating: the one piece of metadata every message needs.
func numDelivered(reply string) (uint64, bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return 0, false
	}
	pos := 0
	switch dots := strings.Count(reply, "."); {
	case dots == 8:
		pos = 4
	case dots >= 10:
		pos = 6
	default:
		return 0, false
	}
	start := 0
	for i := 0; i < pos; i++ {
		j := strings.IndexByte(reply[start:], '.')
		start += j + 1
	}
	tok := reply[start:]
	if j := strings.IndexByte(tok, '.'); j >= 0 {
		tok = tok[:j]
	}
	n, err := strconv.ParseUint(tok, 10, 64)
	return n, err == nil && n > 0
}

// claim reports whether the caller is the one to settle d: true exactly once.
func (d *delivery) claim() bool {
	if !d.done.CompareAndSwap(false, true) {
		return false
	}
	d.r.forget(d)
	return true
}

// settle counts the outcome of an ack, nak or term that was sent.
func (d *delivery) settle(err error, outcome *atomic.Uint64) {
	if err != nil {
		d.c.stats.settleErrors.Add(1)
		return
	}
	outcome.Add(1)
}

func (d *delivery) ack() {
	if d.claim() {
		d.settle(d.raw.Ack(), &d.c.stats.acked)
	}
}

// ackAll acks the deliveries of ds, as ack does each, but takes each run's
// lock once for a stretch of them: the sinks' gathered acks come from one
// run, mostly, and this keeps the sink off the lock the Source takes for
// every message. ds is overwritten.
func ackAll(ds []*delivery) {
	claimed := ds[:0]
	for _, d := range ds {
		if d.done.CompareAndSwap(false, true) {
			claimed = append(claimed, d)
		}
	}
	for i := 0; i < len(claimed); {
		r := claimed[i].r
		j := i
		r.mu.Lock()
		for ; j < len(claimed) && claimed[j].r == r; j++ {
			r.unlink(claimed[j])
		}
		r.mu.Unlock()
		i = j
	}
	for i, d := range claimed {
		d.settle(d.raw.Ack(), &d.c.stats.acked)
		claimed[i] = nil
	}
}

// release hands an unprocessed message back for immediate redelivery.
func (d *delivery) release() {
	if d.claim() {
		d.settle(d.raw.Nak(), &d.c.stats.released)
	}
}

// fail settles a message whose item failed with err: Nak'ed with the backoff
// delay while it has deliveries left, else dead-lettered.
func (d *delivery) fail(err error, permanent bool) {
	if !d.claim() {
		return
	}
	n := int(d.delivered)
	if !permanent && n < d.c.maxDeliver {
		d.settle(d.raw.NakWithDelay(d.c.backoff(n)), &d.c.stats.retried)
		return
	}
	d.dead(err)
}

// dead publishes a claimed message to the dead-letter subject, waits for the
// server to store it, then terminates the message. If the dead letter cannot
// be stored the message is Nak'ed instead, so it is never lost.
func (d *delivery) dead(cause error) {
	h := nats.Header{}
	for k, v := range d.raw.Headers() {
		if k != jetstream.MsgIDHeader {
			h[k] = v
		}
	}
	meta := d.metadata()
	h.Set(HeaderError, cause.Error())
	h.Set(HeaderSubject, d.raw.Subject())
	h.Set(HeaderStream, meta.Stream)
	h.Set(HeaderSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	h.Set(HeaderDeliveries, strconv.FormatUint(d.delivered, 10))
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	dl := &nats.Msg{Subject: d.c.deadLetter, Data: d.raw.Data(), Header: h}
	if _, err := d.c.js.PublishMsg(ctx, dl, jetstream.WithMsgID("dead:"+d.id())); err != nil {
		d.settle(d.raw.NakWithDelay(d.c.backoff(int(d.delivered))), &d.c.stats.retried)
		return
	}
	d.settle(d.raw.TermWithReason(cause.Error()), &d.c.stats.dead)
}

// run tracks the messages one Source has emitted and not yet settled, in a
// list threaded through them (no allocation, no hashing per message).
type run struct {
	mu   sync.Mutex
	head delivery // sentinel: head.next is the oldest
}

func newRun() *run {
	r := &run{}
	r.head.next, r.head.prev = &r.head, &r.head
	return r
}

func (r *run) track(d *delivery) {
	r.mu.Lock()
	d.r, d.prev, d.next = r, r.head.prev, &r.head
	r.head.prev.next = d
	r.head.prev = d
	r.mu.Unlock()
}

func (r *run) forget(d *delivery) {
	r.mu.Lock()
	r.unlink(d)
	r.mu.Unlock()
}

// unlink takes d out of r's list; r.mu is held.
func (r *run) unlink(d *delivery) {
	if d.next != nil {
		d.prev.next, d.next.prev = d.next, d.prev
		d.prev, d.next = nil, nil
	}
}

// releaseLeftovers Naks every message still unsettled and returns how many.
func (r *run) releaseLeftovers() int {
	r.mu.Lock()
	var left []*delivery
	for d := r.head.next; d != &r.head; d = d.next {
		left = append(left, d)
	}
	r.mu.Unlock()
	for _, d := range left {
		d.release()
	}
	return len(left)
}

// runs are the Sources of one pipeline, attached to it ([pipeline.Attach])
// so that its natsjs sinks find them.
type runs struct {
	mu    sync.Mutex
	list  []*run
	hook  bool     // finish is registered as the pipeline's Finally hook
	flush []func() // the sinks' gathered acks, sent before the check
}

type runsKey struct{}

// runsOf returns the runs attached to p.
func runsOf(p *pipeline.Pipeline) *runs {
	return pipeline.Attach(p, runsKey{}, func() *runs { return &runs{} })
}

func (rs *runs) add(r *run) {
	rs.mu.Lock()
	rs.list = append(rs.list, r)
	rs.mu.Unlock()
}

// checkAtEnd makes finish run when p ends, once however many natsjs sinks
// p has, after flush (the sink's gathered acks; may be nil). Only a natsjs
// sink asks for it: a message that a core sink (First, Collect, All) hands to
// the caller is the caller's to settle.
func (rs *runs) checkAtEnd(p *pipeline.Pipeline, flush func()) {
	rs.mu.Lock()
	first := !rs.hook
	rs.hook = true
	if flush != nil {
		rs.flush = append(rs.flush, flush)
	}
	rs.mu.Unlock()
	if first {
		p.Finally(rs.finish)
	}
}

// finish runs when the pipeline ends (a [pipeline.Pipeline.Finally] hook):
// after a clean end, a message that is still unsettled was lost by a stage;
// it is released and reported as the pipeline's result.
func (rs *runs) finish(err error) error {
	rs.mu.Lock()
	list, flush := rs.list, rs.flush
	rs.mu.Unlock()
	for _, f := range flush {
		f() // acks gathered by the sinks are sent, also after a failure
	}
	if err != nil {
		return err
	}
	n := 0
	for _, r := range list {
		n += r.releaseLeftovers()
	}
	if n > 0 {
		return fmt.Errorf("%w: %d message(s) Nak'ed for redelivery; a stage dropped their items without settling them", ErrUnsettled, n)
	}
	return nil
}
