// Package observe benchmarks what observing a pipeline costs per item: W1
// (1,000,000 ints through generate → map(x*3) on one worker → filter(even)
// → collect) with nothing attached, with an observer hearing one call in
// 16, with OpenTelemetry (metrics read by a manual reader every 10 ms, a
// span for one call in 16) and with Prometheus (a registry gathered every
// 10 ms). A module of its own, so that bench/ab.sh can still build the
// suite against commits older than the hook.
package observe

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/otel"
	"github.com/ec0f1147/pipeline/prom"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const items = 1_000_000

var in = func() []int {
	r := make([]int, items)
	for i := range r {
		r[i] = i
	}
	return r
}()

// w1 runs W1 on a pipeline made with opts; during is started with the
// pipeline once its stages are built and stopped when it ends.
func w1(b *testing.B, opts []pipeline.Option, during func(p *pipeline.Pipeline) (stop func())) {
	b.Helper()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		p := pipeline.New(context.Background(), opts...)
		src := pipeline.Generate(p, in...)
		m := pipeline.FanOut(p, src, 1, func(_ context.Context, v int) (int, error) { return v * 3, nil })
		f := pipeline.Filter(p, m, func(v int) bool { return v%2 == 0 })
		stop := func() {}
		if during != nil {
			stop = during(p)
		}
		out, err := pipeline.Collect(p, f)
		stop()
		if err != nil || len(out) != items/2 {
			b.Fatalf("got %d items, %v", len(out), err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/items, "ns/item")
}

// every runs fn every 10 ms until stopped.
func every(fn func()) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() { close(done); <-exited }
}

// hook is an observer that counts what it hears.
type hook struct{ stages, calls atomic.Int64 }

func (h *hook) StageStarted(pipeline.StageInfo)                    { h.stages.Add(1) }
func (h *hook) StageEnded(pipeline.StageInfo, pipeline.StageStats) {}
func (h *hook) PipelineEnded(error, []pipeline.StageStats)         {}
func (h *hook) CallEvery() int                                     { return 16 }
func (h *hook) Call(pipeline.CallInfo)                             { h.calls.Add(1) }

func BenchmarkObserve(b *testing.B) {
	b.Run("attached=none", func(b *testing.B) { w1(b, nil, nil) })
	b.Run("attached=hook", func(b *testing.B) {
		w1(b, []pipeline.Option{pipeline.WithObserver(&hook{})}, nil)
	})
	b.Run("attached=otel", func(b *testing.B) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		tp := sdktrace.NewTracerProvider() // spans are made and recorded, then dropped
		defer func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) }()
		w1(b, []pipeline.Option{otel.Instrument(otel.MeterProvider(mp), otel.TracerProvider(tp))},
			func(p *pipeline.Pipeline) func() {
				return every(func() {
					var rm metricdata.ResourceMetrics
					_ = reader.Collect(context.Background(), &rm)
				})
			})
	})
	b.Run("attached=prom", func(b *testing.B) {
		w1(b, nil, func(p *pipeline.Pipeline) func() {
			reg := prometheus.NewRegistry()
			reg.MustRegister(prom.NewCollector(p, "w1"))
			return every(func() { _, _ = reg.Gather() })
		})
	})
}
