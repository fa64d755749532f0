package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// spanPrinter is an OpenTelemetry span exporter that prints a line per span:
// "span name=… trace=… span=… parent=… remote=…" (a real deployment exports
// to a collector instead).
type spanPrinter struct {
	say func(format string, args ...any)
}

func (s spanPrinter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, sp := range spans {
		s.say("span name=%s trace=%s span=%s parent=%s remote=%t\n", sp.Name(),
			sp.SpanContext().TraceID(), sp.SpanContext().SpanID(), sp.Parent().SpanID(), sp.Parent().IsRemote())
	}
	return nil
}

func (spanPrinter) Shutdown(context.Context) error { return nil }

// printedSpans returns a tracer provider that prints every span as it ends.
func printedSpans(say func(format string, args ...any)) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(spanPrinter{say: say}))
}

// jobHeader starts the span of publishing a job and returns it with the
// headers that carry its trace context to the worker that handles the job.
func jobHeader(tr trace.Tracer) (trace.Span, nats.Header) {
	_, span := tr.Start(context.Background(), "produce", trace.WithSpanKind(trace.SpanKindProducer))
	h := nats.Header{}
	ctx := trace.ContextWithSpan(context.Background(), span)
	propagation.TraceContext{}.Inject(ctx, natsjs.HeaderCarrier(h))
	return span, h
}

// spanLine is a span as printed by spanPrinter.
type spanLine struct {
	name, trace, span, parent string
	remote                    bool
}

func parseSpan(line string) (spanLine, bool) {
	rest, ok := strings.CutPrefix(line, "span ")
	if !ok {
		return spanLine{}, false
	}
	var s spanLine
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "name":
			s.name = v
		case "trace":
			s.trace = v
		case "span":
			s.span = v
		case "parent":
			s.parent = v
		case "remote":
			s.remote = v == "true"
		}
	}
	return s, s.trace != ""
}

// runTrace is -trace: on an embedded server (or -nats), this process
// publishes cfg.Jobs jobs, each with the span of its publishing in the
// traceparent header, and one worker process (this binary, -role worker
// -trace) handles them with its pipeline instrumented by the otel module.
// It prints both processes' spans and checks that every job's trace goes on
// in the worker: a natsjs.map span there whose trace is the job's and whose
// parent is the producer's span, remote.
func runTrace(ctx context.Context, url string, cfg Config, out, stderr io.Writer) error {
	url, js, cons, closeAll, err := startDemo(ctx, url, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	var produced []spanLine
	tp := printedSpans(func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if s, ok := parseSpan(line); ok {
			produced = append(produced, s)
		}
		fmt.Fprint(out, "producer: "+line)
	})
	defer func() { _ = tp.Shutdown(context.Background()) }()
	if err := produceTraced(ctx, js, cfg, tp.Tracer("jsworker")); err != nil {
		return err
	}

	led := newLedger()
	procs, err := startWorkers(1, url, cfg, led, stderr)
	if err != nil {
		return err
	}
	defer stopAll(procs, true)
	if err := waitReady(ctx, procs); err != nil {
		return err
	}
	if err := waitSettled(ctx, cons, time.Minute); err != nil {
		return err
	}
	if err := stopAll(procs, false); err != nil {
		return err
	}
	worker := procs[0].traced()
	for _, s := range worker {
		fmt.Fprintf(out, "worker 1: span name=%s trace=%s span=%s parent=%s remote=%t\n", s.name, s.trace, s.span, s.parent, s.remote)
	}
	continued := 0
	for _, p := range produced {
		for _, w := range worker {
			if w.name == "natsjs.map" && w.trace == p.trace && w.parent == p.span && w.remote {
				continued++
				break
			}
		}
	}
	fmt.Fprintf(out, "traced=%d continued=%d worker_spans=%d\n", len(produced), continued, len(worker))
	if continued != len(produced) || len(produced) != cfg.Jobs {
		return fmt.Errorf("%d of %d jobs' traces went on in the worker", continued, cfg.Jobs)
	}
	return nil
}
