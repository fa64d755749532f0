package natsjs_test

import (
	"context"
	"fmt"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// exampleSpan is a span context as a producer's tracer would make one.
func exampleSpan() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
}

// A producer outside a pipeline publishes a job with its span's trace
// context, so that the pipeline that handles the job continues its trace.
func ExampleHeaderCarrier() {
	ctx := trace.ContextWithSpanContext(context.Background(), exampleSpan()) // the producer's span
	msg := &nats.Msg{Subject: "orders.new", Data: []byte(`{"id":1}`), Header: nats.Header{}}
	propagation.TraceContext{}.Inject(ctx, natsjs.HeaderCarrier(msg.Header))
	fmt.Println(msg.Header.Get(natsjs.HeaderTraceparent))

	// And the other way: what a Source reads from the headers.
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), natsjs.HeaderCarrier(msg.Header)))
	fmt.Println(sc.TraceID(), sc.SpanID(), sc.IsRemote())
	// Output:
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 true
}

// A message published with a traceparent header brings its trace into the
// pipeline: with the otel module's Instrument, the spans of the calls on it
// are children of the producer's span.
func ExampleMsg_SpanContext() {
	d := newDemo()
	defer d.close()
	ctx := context.Background()
	h := nats.Header{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(ctx, exampleSpan()), natsjs.HeaderCarrier(h))
	_, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: "orders.new", Data: []byte(`{"id":1,"cents":100}`), Header: h})
	check(err)
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	m, _, err := pipeline.First(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]))
	check(err)
	sc := m.SpanContext()
	fmt.Println(sc.TraceID(), sc.SpanID(), sc.IsRemote())
	m.Ack()
	// Output: 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 true
}

// The otel module's Instrument calls SetSpanContext with the span of each
// call it records for the item; Publish writes the last one into the
// downstream message's headers, where the next process's Source reads it.
func ExampleMsg_SetSpanContext() {
	d := newDemo(`{"id":1,"cents":1250}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	orders := natsjs.Source(p, c, natsjs.DecodeJSON[order])
	traced := pipeline.FanOut(p, orders, 1, func(_ context.Context, m *natsjs.Msg[order]) (*natsjs.Msg[order], error) {
		fmt.Println("from the headers:", m.SpanContext().IsValid())
		m.SetSpanContext(exampleSpan()) // what the otel adapter does after a call
		return m, nil
	})
	invoices := natsjs.Map(p, traced, 1, bill)
	go func() { d.settled(); p.Stop() }()
	check(natsjs.Publish(p, invoices, d.js, "invoices.new", 8, natsjs.EncodeJSON[invoice]))

	st, err := d.js.Stream(ctx, "INVOICES")
	check(err)
	raw, err := st.GetMsg(ctx, 1)
	check(err)
	fmt.Println(raw.Header.Get(natsjs.HeaderTraceparent))
	// Output:
	// from the headers: false
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}

func ExampleHeaderCarrier_Get() {
	// Found whatever the case the producer spelt the key in.
	h := natsjs.HeaderCarrier(nats.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	fmt.Println(h.Get(natsjs.HeaderTraceparent))
	// Output: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}

func ExampleHeaderCarrier_Set() {
	h := nats.Header{}
	natsjs.HeaderCarrier(h).Set(natsjs.HeaderTracestate, "vendor=x")
	fmt.Println(h)
	// Output: map[tracestate:[vendor=x]]
}

func ExampleHeaderCarrier_Keys() {
	h := natsjs.HeaderCarrier(nats.Header{natsjs.HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	fmt.Println(h.Keys())
	// Output: [traceparent]
}
