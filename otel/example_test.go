package otel_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/otel"
)

// Export a pipeline's metrics and a span for every call.
func ExampleInstrument() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	p := pipeline.New(context.Background(), otel.Instrument(
		otel.PipelineName("demo"), otel.MeterProvider(mp), otel.TracerProvider(tp), otel.CallEvery(1)))
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) {
		return v * 2, nil
	}, pipeline.Name("double"))
	if err := pipeline.Drain(p, out); err != nil {
		fmt.Println(err)
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "pipeline.stage.items.out" {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				name, _ := dp.Attributes.Value("pipeline.stage.name")
				fmt.Println(name.AsString(), dp.Value)
			}
		}
	}
	fmt.Println("spans:", len(spans.Ended()))
	_ = mp.Shutdown(context.Background())
	_ = tp.Shutdown(context.Background())
	// Unordered output:
	// generate#1 3
	// double 3
	// spans: 3
}

// Stop exporting a finished pipeline's metrics.
func ExampleUnregister() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p := pipeline.New(context.Background(), otel.Instrument(otel.MeterProvider(mp)))
	_ = pipeline.Drain(p, pipeline.Generate(p, 1, 2))
	fmt.Println(otel.Unregister(p))
	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	fmt.Println("scopes with metrics:", len(rm.ScopeMetrics))
	_ = mp.Shutdown(context.Background())
	// Output:
	// <nil>
	// scopes with metrics: 0
}

// Trace one call in 1024 per worker: for cheap functions, spans cost more
// than the calls.
func ExampleCallEvery() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	p := pipeline.New(context.Background(), otel.Instrument(otel.TracerProvider(tp), otel.CallEvery(1024)))
	items := make([]int, 2048)
	err := pipeline.ForEach(p, pipeline.Generate(p, items...), 1, func(context.Context, int) error { return nil })
	fmt.Println(err, len(spans.Ended()))
	_ = tp.Shutdown(context.Background())
	// Output:
	// <nil> 2
}

// Name the pipeline in every series and span.
func ExamplePipelineName() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	p := pipeline.New(context.Background(), otel.Instrument(otel.PipelineName("nightly"), otel.TracerProvider(tp), otel.CallEvery(1)))
	_ = pipeline.ForEach(p, pipeline.Generate(p, 1), 1, func(context.Context, int) error { return nil }, pipeline.Name("store"))
	for _, s := range spans.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == "pipeline.name" {
				fmt.Println(s.Name(), a.Value.AsString())
			}
		}
	}
	_ = tp.Shutdown(context.Background())
	// Output:
	// store nightly
}
