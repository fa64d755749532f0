// Package otel exports a pipeline's metrics and call traces to
// OpenTelemetry.
//
// Give [Instrument] to [pipeline.New]:
//
//	p := pipeline.New(ctx, otel.Instrument(otel.PipelineName("etl")))
//
// Metrics (attributes pipeline.name, pipeline.stage.name,
// pipeline.stage.kind on every series) are read from [pipeline.Pipeline.Stats]
// when the reader collects, so the pipeline pays nothing for them between
// collections:
//
//	pipeline.stage.items.in        counter   {item}    items taken from the input
//	pipeline.stage.items.out       counter   {item}    items sent on
//	pipeline.stage.items.dropped   counter   {item}    items filtered out or shed
//	pipeline.stage.errors          counter   {error}   failed calls skipped through OnError
//	pipeline.stage.retries         counter   {retry}   re-runs of a failed call
//	pipeline.stage.wait.receive    counter   s         time waiting on an empty input
//	pipeline.stage.wait.send       counter   s         time blocked on a full output
//	pipeline.stage.queue.depth     gauge     {item}    items in the stage's output now
//	pipeline.stage.queue.capacity  gauge     {item}    capacity of the stage's output
//	pipeline.stage.workers         gauge     {worker}  configured workers
//	pipeline.stage.busy            gauge     {worker}  calls running now
//	pipeline.stage.utilization     gauge     1         share of time neither waiting nor blocked
//	pipeline.stage.bottleneck      gauge     1         1 on the stage that limits the pipeline
//	pipeline.stage.call.duration   histogram s         sampled call durations (see CallEvery)
//
// Traces: one span in [CallEvery] calls per worker (default 16; 1 traces
// every call) is recorded, named after the stage, started and ended at the
// call's start and end, with the error as its status. Its parent is the span
// of the item, if the item is a [Traced], or else the span in the context
// the pipeline was created with. A span is made after its call returns: the
// context the user function sees does not hold it.
package otel

import (
	"context"
	"sync"

	otelapi "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ec0f1147/pipeline"
)

// ScopeName is the instrumentation scope of the meter and tracer.
const ScopeName = "github.com/ec0f1147/pipeline/otel"

// Traced is implemented by an item that carries its own trace context (a
// job read from a message queue, say, whose headers carried a W3C
// traceparent: propagation.TraceContext{}.Extract gives the span context).
// The span of a call on such an item is a child of SpanContext, so a trace
// follows the item. If the item also implements [TraceSetter], it is given
// the span context of its call's span, so that the next stage's call is
// that span's child: a trace of the item across stages. The natsjs module's
// *Msg[T] is both, and its Publish and Source carry the trace in the W3C
// traceparent header, so a trace also follows a job across processes.
type Traced interface {
	SpanContext() trace.SpanContext
}

// TraceSetter is a [Traced] item (by pointer) that takes the span context
// of each span recorded for it.
type TraceSetter interface {
	Traced
	SetSpanContext(trace.SpanContext)
}

// Option configures [Instrument].
type Option func(*config)

type config struct {
	name  string
	mp    metric.MeterProvider
	tp    trace.TracerProvider
	every int
}

// PipelineName sets the pipeline.name attribute (default "pipeline").
func PipelineName(name string) Option { return func(c *config) { c.name = name } }

// MeterProvider sets where metrics go; default none (no metrics).
func MeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// TracerProvider sets where spans go; default none (no spans).
func TracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// CallEvery sets how many calls per worker one sampled call stands for
// (spans and the duration histogram): 1 records every call, 0 none. The
// default is 16.
func CallEvery(n int) Option { return func(c *config) { c.every = n } }

// Instrument returns an option for [pipeline.New] that exports the
// pipeline's metrics to the MeterProvider and spans of its calls to the
// TracerProvider (see the package documentation). An error making the
// instruments goes to OpenTelemetry's error handler. The metrics callback
// stays registered after the pipeline ends, so that a collection then reads
// its final counts; it holds the pipeline until the MeterProvider is shut
// down (or [Unregister] is called), so give a long-lived process's
// short-lived pipelines their own provider or unregister them.
func Instrument(opts ...Option) pipeline.Option {
	cfg := config{name: "pipeline", every: 16}
	for _, o := range opts {
		o(&cfg)
	}
	return func(p *pipeline.Pipeline) {
		o := &observer{cfg: cfg, p: p, attrs: map[string]metric.MeasurementOption{}}
		if cfg.tp != nil {
			o.tracer = cfg.tp.Tracer(ScopeName)
		}
		if cfg.mp != nil {
			if err := o.register(cfg.mp.Meter(ScopeName)); err != nil {
				otelapi.Handle(err)
			}
		}
		pipeline.Attach(p, regKey{}, func() *observer { return o })
		pipeline.WithObserver(o)(p)
	}
}

// observer is the pipeline.CallObserver Instrument attaches.
type observer struct {
	cfg    config
	p      *pipeline.Pipeline
	tracer trace.Tracer
	dur    metric.Float64Histogram
	reg    metric.Registration

	mu    sync.Mutex
	attrs map[string]metric.MeasurementOption // per stage name
}

// set returns the attribute set of a stage.
func (o *observer) set(name, kind string) metric.MeasurementOption {
	o.mu.Lock()
	defer o.mu.Unlock()
	a, ok := o.attrs[name]
	if !ok {
		a = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("pipeline.name", o.cfg.name),
			attribute.String("pipeline.stage.name", name),
			attribute.String("pipeline.stage.kind", kind)))
		o.attrs[name] = a
	}
	return a
}

func (o *observer) StageStarted(pipeline.StageInfo)                    {}
func (o *observer) StageEnded(pipeline.StageInfo, pipeline.StageStats) {}

func (o *observer) PipelineEnded(error, []pipeline.StageStats) {}

// Unregister stops exporting the metrics of p, instrumented with
// [Instrument]; it does nothing for another pipeline.
func Unregister(p *pipeline.Pipeline) error {
	o := pipeline.Attach(p, regKey{}, func() *observer { return nil })
	if o == nil || o.reg == nil {
		return nil
	}
	return o.reg.Unregister()
}

type regKey struct{}

func (o *observer) CallEvery() int {
	if o.tracer == nil && o.dur == nil {
		return 0
	}
	return o.cfg.every
}

func (o *observer) Call(c pipeline.CallInfo) {
	if o.dur != nil {
		o.dur.Record(context.Background(), c.Duration.Seconds(), o.set(c.Stage.Name, c.Stage.Kind))
	}
	if o.tracer == nil {
		return
	}
	parent := o.p.Context()
	item, traced := c.Item.(Traced)
	if traced {
		if sc := item.SpanContext(); sc.IsValid() {
			parent = trace.ContextWithSpanContext(parent, sc)
		}
	}
	_, span := o.tracer.Start(parent, c.Stage.Name, trace.WithTimestamp(c.Start),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("pipeline.name", o.cfg.name),
			attribute.String("pipeline.stage.name", c.Stage.Name),
			attribute.String("pipeline.stage.kind", c.Stage.Kind)))
	if c.Err != nil {
		span.RecordError(c.Err)
		span.SetStatus(codes.Error, c.Err.Error())
	}
	span.End(trace.WithTimestamp(c.Start.Add(c.Duration)))
	if s, ok := c.Item.(TraceSetter); ok {
		s.SetSpanContext(span.SpanContext())
	}
}

// register makes the instruments and the callback that reads Stats.
func (o *observer) register(m metric.Meter) error {
	var err error
	o.dur, err = m.Float64Histogram("pipeline.stage.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of sampled calls of a stage's function."),
		metric.WithExplicitBucketBoundaries(1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60))
	if err != nil {
		return err
	}
	type ctr struct {
		name, unit, desc string
		get              func(pipeline.StageStats) int64
	}
	counters := []ctr{
		{"pipeline.stage.items.in", "{item}", "Items taken from the stage's input.", func(s pipeline.StageStats) int64 { return int64(s.In) }},
		{"pipeline.stage.items.out", "{item}", "Items the stage sent on.", func(s pipeline.StageStats) int64 { return int64(s.Out) }},
		{"pipeline.stage.items.dropped", "{item}", "Items the stage filtered out or shed.", func(s pipeline.StageStats) int64 { return int64(s.Dropped) }},
		{"pipeline.stage.errors", "{error}", "Failed calls skipped through OnError.", func(s pipeline.StageStats) int64 { return int64(s.Errors) }},
		{"pipeline.stage.retries", "{retry}", "Re-runs of a failed call.", func(s pipeline.StageStats) int64 { return int64(s.Retries) }},
	}
	gauges := []ctr{
		{"pipeline.stage.queue.depth", "{item}", "Items in the stage's output channel(s) now.", func(s pipeline.StageStats) int64 { return int64(s.QueueLen) }},
		{"pipeline.stage.queue.capacity", "{item}", "Capacity of the stage's output channel(s).", func(s pipeline.StageStats) int64 { return int64(s.QueueCap) }},
		{"pipeline.stage.workers", "{worker}", "Configured workers of the stage.", func(s pipeline.StageStats) int64 { return int64(s.Workers) }},
		{"pipeline.stage.busy", "{worker}", "Calls of the stage's function running now.", func(s pipeline.StageStats) int64 { return int64(s.Busy) }},
		{"pipeline.stage.bottleneck", "1", "1 on the stage that limits the pipeline, else 0.", func(s pipeline.StageStats) int64 {
			if s.Bottleneck {
				return 1
			}
			return 0
		}},
	}
	var insts []metric.Observable
	ints := map[metric.Observable]func(pipeline.StageStats) int64{}
	for _, c := range counters {
		i, err := m.Int64ObservableCounter(c.name, metric.WithUnit(c.unit), metric.WithDescription(c.desc))
		if err != nil {
			return err
		}
		insts, ints[i] = append(insts, i), c.get
	}
	for _, c := range gauges {
		i, err := m.Int64ObservableGauge(c.name, metric.WithUnit(c.unit), metric.WithDescription(c.desc))
		if err != nil {
			return err
		}
		insts, ints[i] = append(insts, i), c.get
	}
	recv, err := m.Float64ObservableCounter("pipeline.stage.wait.receive", metric.WithUnit("s"),
		metric.WithDescription("Time the stage's goroutines waited on an empty input."))
	if err != nil {
		return err
	}
	send, err := m.Float64ObservableCounter("pipeline.stage.wait.send", metric.WithUnit("s"),
		metric.WithDescription("Time the stage's goroutines were blocked on a full output."))
	if err != nil {
		return err
	}
	util, err := m.Float64ObservableGauge("pipeline.stage.utilization", metric.WithUnit("1"),
		metric.WithDescription("Share of the stage's goroutine time spent neither waiting for input nor blocked on output."))
	if err != nil {
		return err
	}
	insts = append(insts, recv, send, util)
	o.reg, err = m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		for _, st := range o.p.Stats() {
			a := o.set(st.Name, st.Kind)
			for i, get := range ints {
				obs.ObserveInt64(i.(metric.Int64Observable), get(st), a)
			}
			obs.ObserveFloat64(recv, st.RecvWait.Seconds(), a)
			obs.ObserveFloat64(send, st.SendWait.Seconds(), a)
			obs.ObserveFloat64(util, st.Utilization, a)
		}
		return nil
	}, insts...)
	return err
}
