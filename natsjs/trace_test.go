package natsjs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/ec0f1147/pipeline/otel"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A Msg is an item that carries its own trace for the otel adapter, without
// natsjs importing it.
var _ otel.TraceSetter = (*natsjs.Msg[job])(nil)

// tracer is one process's OpenTelemetry SDK with an in-memory span recorder.
type tracer struct {
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
}

func newTracer(t *testing.T) *tracer {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &tracer{rec: rec, tp: tp}
}

// root starts the span of a process's pipeline context.
func (tr *tracer) root(name string) (context.Context, trace.Span) {
	return tr.tp.Tracer("test").Start(context.Background(), name)
}

// named returns the ended spans called name.
func (tr *tracer) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// seen records the trace context each item's Msg has as the first stage of a
// pipeline receives it, by job ID.
type seen struct {
	mu sync.Mutex
	sc map[int]trace.SpanContext
}

func (s *seen) check(id int, m interface{ SpanContext() trace.SpanContext }) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sc == nil {
		s.sc = map[int]trace.SpanContext{}
	}
	s.sc[id] = m.SpanContext()
}

func (s *seen) get() map[int]trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sc
}

// consumeTraced runs process B's pipeline on consumer cons until it has
// acked n messages: Source → a core stage "check" (records what each Msg
// carries) → natsjs.Ack, instrumented with tr's provider, every call traced.
func consumeTraced(t *testing.T, ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, tr *tracer, n uint64) map[int]trace.SpanContext {
	t.Helper()
	c, err := natsjs.NewConsumer(context.Background(), js, cons, deadSubject)
	require.NoError(t, err)
	var s seen
	p := pipeline.New(ctx, otel.Instrument(otel.TracerProvider(tr.tp), otel.CallEvery(1), otel.PipelineName("B")))
	checked := pipeline.FanOut(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 2,
		func(_ context.Context, m *natsjs.Msg[job]) (*natsjs.Msg[job], error) {
			s.check(m.Value.ID, m)
			return m, nil
		}, pipeline.Name("check"))
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, checked) }()
	require.Eventually(t, func() bool { return c.Stats().Acked == n }, 30*time.Second, time.Millisecond, "B: %v", c.Stats())
	p.Stop()
	require.NoError(t, <-res)
	return s.get()
}

func TestTrace_FollowsAJobAcrossProcessesThroughTheTraceparentHeader(t *testing.T) {
	const n = 50
	e := newEnv(t)
	e.publishJobs(0, n) // without a trace: A's calls are children of A's root span

	// Process A: Source(JOBS) → Map → Publish(DONE), every call traced.
	a := newTracer(t)
	ctxA, rootA := a.root("A")
	cA := e.consumer("a", time.Minute)
	pA := pipeline.New(ctxA, otel.Instrument(otel.TracerProvider(a.tp), otel.CallEvery(1), otel.PipelineName("A")))
	squares := natsjs.Map(pA, natsjs.Source(pA, cA, natsjs.DecodeJSON[job]), 2,
		func(_ context.Context, j job) (job, error) { return job{ID: j.ID}, nil })
	resA := make(chan error, 1)
	go func() { resA <- natsjs.Publish(pA, squares, e.js, doneSubject, 8, natsjs.EncodeJSON[job]) }()
	require.Eventually(t, func() bool { return cA.Stats().Acked == n }, 30*time.Second, time.Millisecond, "A: %v", cA.Stats())
	pA.Stop()
	require.NoError(t, <-resA)
	rootA.End()

	// A's spans: root → natsjs.map → natsjs.publish, one trace.
	traceID := rootA.SpanContext().TraceID()
	maps := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range a.named("natsjs.map") {
		maps[s.SpanContext().SpanID()] = s
		assert.Equal(t, traceID, s.SpanContext().TraceID())
		assert.Equal(t, rootA.SpanContext().SpanID(), s.Parent().SpanID())
	}
	publishes := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range a.named("natsjs.publish") {
		publishes[s.SpanContext().SpanID()] = s
		assert.Equal(t, traceID, s.SpanContext().TraceID())
		assert.Contains(t, maps, s.Parent().SpanID(), "a publish span is a child of its item's map span")
	}
	require.Len(t, maps, n)
	require.Len(t, publishes, n)

	// The stored messages carry the publish call's span as their traceparent.
	byID := map[int]trace.SpanContext{}
	for _, m := range e.streamMsgs("DONE") {
		var j job
		require.NoError(t, json.Unmarshal(m.Data, &j))
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), natsjs.HeaderCarrier(m.Header)))
		require.True(t, sc.IsValid(), "job %d: traceparent %q", j.ID, m.Header.Get(natsjs.HeaderTraceparent))
		assert.Equal(t, traceID, sc.TraceID())
		assert.Contains(t, publishes, sc.SpanID(), "job %d's traceparent names its publish span", j.ID)
		byID[j.ID] = sc
	}
	require.Len(t, byID, n)

	// Process B: its own connection, SDK and root span (of another trace).
	nc, js, err := natsjs.Connect(context.Background(), e.url())
	require.NoError(t, err)
	defer nc.Close()
	cons, err := js.CreateOrUpdateConsumer(context.Background(), "DONE",
		jetstream.ConsumerConfig{Durable: "b", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	require.NoError(t, err)
	b := newTracer(t)
	ctxB, rootB := b.root("B")
	got := consumeTraced(t, ctxB, js, cons, b, n)
	rootB.End()
	require.Len(t, got, n)
	for id, sc := range got {
		assert.True(t, sc.IsRemote(), "job %d", id)
		assert.Equal(t, byID[id].TraceID(), sc.TraceID(), "job %d", id)
		assert.Equal(t, byID[id].SpanID(), sc.SpanID(), "job %d", id)
	}
	// B's call spans continue A's trace: check is a child of A's publish
	// span, B's ack a child of B's check span.
	checks := map[trace.SpanID]bool{}
	parents := map[trace.SpanID]bool{}
	for _, s := range b.named("check") {
		checks[s.SpanContext().SpanID()] = true
		assert.Equal(t, traceID, s.SpanContext().TraceID())
		assert.True(t, s.Parent().IsRemote())
		assert.Contains(t, publishes, s.Parent().SpanID())
		parents[s.Parent().SpanID()] = true
	}
	assert.Len(t, parents, n, "one B span per A publish span")
	acks := b.named("natsjs.ack")
	require.Len(t, acks, n)
	for _, s := range acks {
		assert.Equal(t, traceID, s.SpanContext().TraceID())
		assert.True(t, checks[s.Parent().SpanID()], "B's ack span is a child of its check span")
	}
}

func TestSource_StartsFromThePipelineSpanWithoutAValidTraceparent(t *testing.T) {
	e := newEnv(t)
	producer := newTracer(t)
	_, upstream := producer.root("producer")
	upstream.End()
	good := nats.Header{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(),
		upstream.SpanContext().WithTraceState(mustTraceState(t, "vendor=x"))), natsjs.HeaderCarrier(good))
	// A producer that spells the header as net/http does.
	canonical := nats.Header{"Traceparent": good[natsjs.HeaderTraceparent]}
	headers := []nats.Header{
		nil,
		{natsjs.HeaderTraceparent: {"00-not-a-trace-01"}},
		{natsjs.HeaderTraceparent: {"00-00000000000000000000000000000000-0000000000000000-01"}},
		{natsjs.HeaderTraceparent: {"zz-" + good.Get(natsjs.HeaderTraceparent)[3:]}},
		good,
		canonical,
	}
	for i, h := range headers {
		data, err := json.Marshal(job{ID: i})
		require.NoError(t, err)
		_, err = e.js.PublishMsg(context.Background(), &nats.Msg{Subject: jobsSubject, Data: data, Header: h})
		require.NoError(t, err)
	}

	b := newTracer(t)
	ctxB, rootB := b.root("B")
	got := consumeTraced(t, ctxB, e.js, e.durable("b", time.Minute), b, uint64(len(headers)))
	rootB.End()

	require.Len(t, got, len(headers))
	for id := 0; id < 4; id++ {
		assert.False(t, got[id].IsValid(), "job %d carries no valid trace", id)
	}
	for _, id := range []int{4, 5} {
		assert.Equal(t, upstream.SpanContext().TraceID(), got[id].TraceID(), "job %d", id)
		assert.Equal(t, upstream.SpanContext().SpanID(), got[id].SpanID(), "job %d", id)
	}
	assert.Equal(t, "vendor=x", got[4].TraceState().String(), "the tracestate comes along")

	fromRoot, fromUpstream := 0, 0
	for _, s := range b.named("check") {
		switch s.Parent().SpanID() {
		case rootB.SpanContext().SpanID():
			fromRoot++
			assert.Equal(t, rootB.SpanContext().TraceID(), s.SpanContext().TraceID())
		case upstream.SpanContext().SpanID():
			fromUpstream++
			assert.Equal(t, upstream.SpanContext().TraceID(), s.SpanContext().TraceID())
		default:
			t.Errorf("span %s has an unexpected parent %s", s.SpanContext().SpanID(), s.Parent().SpanID())
		}
	}
	assert.Equal(t, 4, fromRoot, "no or a bad traceparent: a child of the pipeline's span")
	assert.Equal(t, 2, fromUpstream, "a good traceparent: a child of the producer's span")
}

func TestPublish_WritesNoTraceHeadersForAnItemWithoutATrace(t *testing.T) {
	const n = 20
	e := newEnv(t)
	e.publishJobs(0, n)
	// No tracing at all: nothing to pass on.
	require.NoError(t, publishRun(t, e, e.consumer("work", time.Minute), doneSubject, n))
	done := e.streamMsgs("DONE")
	require.Len(t, done, n)
	for _, m := range done {
		assert.Empty(t, m.Header.Get(natsjs.HeaderTraceparent))
		assert.Empty(t, m.Header.Get(natsjs.HeaderTracestate))
	}
}

func TestPublish_PassesAnIncomingTraceOnWithoutATracer(t *testing.T) {
	e := newEnv(t)
	producer := newTracer(t)
	_, upstream := producer.root("producer")
	upstream.End()
	h := nats.Header{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(),
		upstream.SpanContext().WithTraceState(mustTraceState(t, "vendor=x"))), natsjs.HeaderCarrier(h))
	data, err := json.Marshal(job{ID: 3})
	require.NoError(t, err)
	_, err = e.js.PublishMsg(context.Background(), &nats.Msg{Subject: jobsSubject, Data: data, Header: h})
	require.NoError(t, err)

	require.NoError(t, publishRun(t, e, e.consumer("work", time.Minute), doneSubject, 1))
	done := e.streamMsgs("DONE")
	require.Len(t, done, 1)
	assert.Equal(t, h.Get(natsjs.HeaderTraceparent), done[0].Header.Get(natsjs.HeaderTraceparent))
	assert.Equal(t, "vendor=x", done[0].Header.Get(natsjs.HeaderTracestate))
}

func TestHeaderCarrier_FindsAKeyInAnyCase(t *testing.T) {
	h := natsjs.HeaderCarrier(nats.Header{"Traceparent": {"a"}, "other": {"b"}})
	assert.Equal(t, "a", h.Get("traceparent"))
	assert.Equal(t, "b", h.Get("other"))
	assert.Empty(t, h.Get("tracestate"))
	h.Set("tracestate", "c")
	assert.Equal(t, []string{"c"}, nats.Header(h)["tracestate"])
	assert.ElementsMatch(t, []string{"Traceparent", "other", "tracestate"}, h.Keys())
}

func mustTraceState(t *testing.T, s string) trace.TraceState {
	ts, err := trace.ParseTraceState(s)
	require.NoError(t, err)
	return ts
}
