package natsjs

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C Trace Context headers a message carries its trace in: [Publish]
// writes them, a [Source] reads them.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// HeaderCarrier lets OpenTelemetry's propagators read and write the headers
// of a NATS message: a producer outside a pipeline that publishes jobs for a
// [Source] puts its span's trace context into them with
//
//	propagation.TraceContext{}.Inject(ctx, natsjs.HeaderCarrier(msg.Header))
//
// nats.Header is case-sensitive; Get also finds a key written in another
// case (such as "Traceparent", as net/http spells it).
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string {
	if v := nats.Header(h).Get(key); v != "" {
		return v
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set sets key to value.
func (h HeaderCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys returns the keys of the headers.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

var w3c propagation.TraceContext

// noSpan is the trace context of a message that carries none; never written.
var noSpan trace.SpanContext

// SpanContext returns the trace context of the message's item: at first
// the one its headers carried (the W3C traceparent and tracestate, as
// [Publish] writes them; an invalid one if they carry none or a malformed
// one), then the last one given to [Msg.SetSpanContext]. With
// [Msg.SetSpanContext] it makes *Msg[T] an item that carries its own trace
// for the pipeline's OpenTelemetry adapter (the otel module's Traced and
// TraceSetter): the spans of the calls on the item are children of the span
// that published the message, in this process or another, and [Publish]
// passes the trace on downstream.
func (m *Msg[T]) SpanContext() trace.SpanContext { return m.d.spanContext() }

// SetSpanContext makes sc the trace context of the message's item: the
// parent of the spans of its next calls, and the one [Publish] writes into
// the downstream message's headers. Every Msg of the same message (the input
// and the output of a [Map]) shares it. The OpenTelemetry adapter calls it
// with the span of each call it records for the item.
func (m *Msg[T]) SetSpanContext(sc trace.SpanContext) { m.d.setSpan(sc) }

// spanContext returns d's trace context, read from the headers when first
// asked for. A message is handled by one goroutine at a time (stages hand it
// on through channels), so no lock is needed.
func (d *delivery) spanContext() trace.SpanContext {
	if d.span == nil {
		d.span = &noSpan
		if sc := extractSpan(d.raw.Headers()); sc.IsValid() {
			d.span = &sc
		}
	}
	return *d.span
}

func (d *delivery) setSpan(sc trace.SpanContext) {
	if d.span == nil || d.span == &noSpan {
		d.span = new(trace.SpanContext)
	}
	*d.span = sc
}

// extractSpan reads the W3C trace context of headers h; a missing or
// malformed traceparent gives an invalid SpanContext.
func extractSpan(h nats.Header) trace.SpanContext {
	if len(h) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), HeaderCarrier(h)))
}

// traceHeader returns headers holding the W3C trace context sc, or nil if
// sc is invalid.
func traceHeader(sc trace.SpanContext) nats.Header {
	if !sc.IsValid() {
		return nil
	}
	h := nats.Header{}
	w3c.Inject(trace.ContextWithSpanContext(context.Background(), sc), HeaderCarrier(h))
	return h
}
