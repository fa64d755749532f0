package otel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/otel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ints(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

// collect reads every metric of reader into name → stage name → data point value.
func collect(t *testing.T, reader *sdkmetric.ManualReader) (map[string]map[string]float64, map[string]map[string]metricdata.HistogramDataPoint[float64]) {
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	vals := map[string]map[string]float64{}
	hists := map[string]map[string]metricdata.HistogramDataPoint[float64]{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, otel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			stage := func(s attribute.Set) string {
				v, _ := s.Value("pipeline.stage.name")
				p, _ := s.Value("pipeline.name")
				assert.Equal(t, "etl", p.AsString())
				_, ok := s.Value("pipeline.stage.kind")
				assert.True(t, ok)
				return v.AsString()
			}
			add := func(s attribute.Set, v float64) {
				if vals[m.Name] == nil {
					vals[m.Name] = map[string]float64{}
				}
				vals[m.Name][stage(s)] = v
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if hists[m.Name] == nil {
						hists[m.Name] = map[string]metricdata.HistogramDataPoint[float64]{}
					}
					hists[m.Name][stage(p.Attributes)] = p
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return vals, hists
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()

	p := pipeline.New(context.Background(), otel.Instrument(otel.PipelineName("etl"), otel.MeterProvider(mp), otel.CallEvery(1)))
	src := pipeline.Generate(p, ints(100)...)
	sq := pipeline.FanOut(p, src, 2, func(_ context.Context, v int) (int, error) {
		if v%10 == 0 {
			return 0, errors.New("tens")
		}
		time.Sleep(100 * time.Microsecond)
		return v * v, nil
	}, pipeline.Name("square"), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	ev := pipeline.Filter(p, sq, func(v int) bool { return v%2 == 0 }, pipeline.Name("even"))
	require.NoError(t, pipeline.Drain(p, ev))

	vals, hists := collect(t, reader)
	assert.Equal(t, 100.0, vals["pipeline.stage.items.in"]["square"])
	assert.Equal(t, 90.0, vals["pipeline.stage.items.out"]["square"])
	assert.Equal(t, 10.0, vals["pipeline.stage.errors"]["square"])
	assert.Equal(t, 50.0, vals["pipeline.stage.items.dropped"]["even"], "the odd squares")
	assert.Equal(t, 0.0, vals["pipeline.stage.retries"]["square"])
	assert.Equal(t, 2.0, vals["pipeline.stage.workers"]["square"])
	assert.Equal(t, 0.0, vals["pipeline.stage.busy"]["square"])
	assert.Equal(t, 64.0, vals["pipeline.stage.queue.capacity"]["square"])
	assert.Equal(t, 0.0, vals["pipeline.stage.queue.depth"]["square"])
	assert.Contains(t, vals["pipeline.stage.utilization"], "generate#1")
	assert.Contains(t, vals["pipeline.stage.wait.receive"], "even")
	assert.Contains(t, vals["pipeline.stage.wait.send"], "generate#1")
	assert.Equal(t, 1.0, vals["pipeline.stage.bottleneck"]["square"]+vals["pipeline.stage.bottleneck"]["even"]+vals["pipeline.stage.bottleneck"]["generate#1"])
	h := hists["pipeline.stage.call.duration"]["square"]
	assert.Equal(t, uint64(100), h.Count, "every call, as CallEvery(1) asks")
	assert.Greater(t, h.Sum, 90*100e-6)
}

// job is an item carrying its own trace context.
type job struct {
	n  int
	sc trace.SpanContext
}

func (j *job) SpanContext() trace.SpanContext      { return j.sc }
func (j *job) SetSpanContext(sc trace.SpanContext) { j.sc = sc }

func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { require.NoError(t, tp.Shutdown(context.Background())) }()
	tracer := tp.Tracer("test")

	t.Run("a span per sampled call, child of the pipeline's span", func(t *testing.T) {
		rec.Reset()
		ctx, root := tracer.Start(context.Background(), "run")
		p := pipeline.New(ctx, otel.Instrument(otel.PipelineName("etl"), otel.TracerProvider(tp), otel.CallEvery(4)))
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(16)...), 1, func(_ context.Context, v int) (int, error) {
			if v == 8 {
				return 0, errors.New("eight")
			}
			return v, nil
		}, pipeline.Name("f"), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		require.NoError(t, pipeline.Drain(p, out))
		root.End()
		var calls []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == "f" {
				calls = append(calls, s)
			}
		}
		require.Len(t, calls, 4, "calls 0, 4, 8, 12")
		failed := 0
		for _, s := range calls {
			assert.Equal(t, root.SpanContext().TraceID(), s.SpanContext().TraceID())
			assert.Equal(t, root.SpanContext().SpanID(), s.Parent().SpanID())
			assert.False(t, s.EndTime().Before(s.StartTime()))
			if s.Status().Code == codes.Error {
				failed++
				assert.Equal(t, "eight", s.Status().Description)
			}
		}
		assert.Equal(t, 1, failed)
	})
	t.Run("an item's trace is continued across stages", func(t *testing.T) {
		rec.Reset()
		_, origin := tracer.Start(context.Background(), "job-origin")
		origin.End()
		p := pipeline.New(context.Background(), otel.Instrument(otel.TracerProvider(tp), otel.CallEvery(1)))
		src := pipeline.Generate(p, &job{n: 1, sc: origin.SpanContext()}, &job{n: 2})
		pass := func(_ context.Context, j *job) (*job, error) { return j, nil }
		a := pipeline.FanOut(p, src, 1, pass, pipeline.Name("a"))
		b := pipeline.FanOut(p, a, 1, pass, pipeline.Name("b"))
		jobs, err := pipeline.Collect(p, b)
		require.NoError(t, err)
		require.Len(t, jobs, 2)
		byName := map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			byName[s.Name()] = append(byName[s.Name()], s)
		}
		require.Len(t, byName["a"], 2)
		require.Len(t, byName["b"], 2)
		var a1, b1 sdktrace.ReadOnlySpan
		for _, s := range byName["a"] {
			if s.Parent().SpanID() == origin.SpanContext().SpanID() {
				a1 = s
			}
		}
		require.NotNil(t, a1, "job 1's first call is a child of its origin")
		assert.Equal(t, origin.SpanContext().TraceID(), a1.SpanContext().TraceID())
		for _, s := range byName["b"] {
			if s.Parent().SpanID() == a1.SpanContext().SpanID() {
				b1 = s
			}
		}
		require.NotNil(t, b1, "job 1's second call continues from its first")
		assert.Equal(t, origin.SpanContext().TraceID(), b1.SpanContext().TraceID())
		assert.Equal(t, b1.SpanContext(), jobs[0].sc, "the item holds its last span")
	})
	t.Run("CallEvery(0) records no span", func(t *testing.T) {
		rec.Reset()
		p := pipeline.New(context.Background(), otel.Instrument(otel.TracerProvider(tp), otel.CallEvery(0)))
		require.NoError(t, pipeline.ForEach(p, pipeline.Generate(p, ints(10)...), 1, func(context.Context, int) error { return nil }))
		assert.Empty(t, rec.Ended())
	})
}

func TestUnregister(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	p := pipeline.New(context.Background(), otel.Instrument(otel.PipelineName("etl"), otel.MeterProvider(mp)))
	require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
	vals, _ := collect(t, reader)
	assert.Equal(t, 3.0, vals["pipeline.stage.items.out"]["generate#1"], "final counts after the end")
	require.NoError(t, otel.Unregister(p))
	vals, _ = collect(t, reader)
	assert.Empty(t, vals["pipeline.stage.items.out"])
	assert.NoError(t, otel.Unregister(pipeline.New(context.Background())), "a pipeline not instrumented")
}
