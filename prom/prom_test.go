package prom_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/prom"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ints(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

// run builds Generate(100) → FanOut "square" (errors on tens, skipped) →
// Filter "even" and drains it.
func run(t *testing.T) *pipeline.Pipeline {
	p := pipeline.New(context.Background())
	src := pipeline.Generate(p, ints(100)...)
	sq := pipeline.FanOut(p, src, 2, func(_ context.Context, v int) (int, error) {
		if v%10 == 0 {
			return 0, errors.New("tens")
		}
		return v * v, nil
	}, pipeline.Name("square"), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	ev := pipeline.Filter(p, sq, func(v int) bool { return v%2 == 0 }, pipeline.Name("even"))
	require.NoError(t, pipeline.Drain(p, ev))
	return p
}

func TestCollector(t *testing.T) {
	t.Run("the series, through testutil", func(t *testing.T) {
		p := run(t)
		c := prom.NewCollector(p, "etl")
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP pipeline_stage_items_in_total Items taken from the stage's input.
# TYPE pipeline_stage_items_in_total counter
pipeline_stage_items_in_total{kind="filter",pipeline="etl",stage="even"} 90
pipeline_stage_items_in_total{kind="fanout",pipeline="etl",stage="square"} 100
pipeline_stage_items_in_total{kind="generate",pipeline="etl",stage="generate#1"} 100
# HELP pipeline_stage_errors_total Failed calls skipped through OnError.
# TYPE pipeline_stage_errors_total counter
pipeline_stage_errors_total{kind="filter",pipeline="etl",stage="even"} 0
pipeline_stage_errors_total{kind="fanout",pipeline="etl",stage="square"} 10
pipeline_stage_errors_total{kind="generate",pipeline="etl",stage="generate#1"} 0
# HELP pipeline_stage_items_dropped_total Items the stage filtered out or shed.
# TYPE pipeline_stage_items_dropped_total counter
pipeline_stage_items_dropped_total{kind="filter",pipeline="etl",stage="even"} 50
pipeline_stage_items_dropped_total{kind="fanout",pipeline="etl",stage="square"} 0
pipeline_stage_items_dropped_total{kind="generate",pipeline="etl",stage="generate#1"} 0
# HELP pipeline_stage_workers Configured workers of the stage.
# TYPE pipeline_stage_workers gauge
pipeline_stage_workers{kind="filter",pipeline="etl",stage="even"} 1
pipeline_stage_workers{kind="fanout",pipeline="etl",stage="square"} 2
pipeline_stage_workers{kind="generate",pipeline="etl",stage="generate#1"} 1
`), "pipeline_stage_items_in_total", "pipeline_stage_errors_total", "pipeline_stage_items_dropped_total", "pipeline_stage_workers"))
		// 3 stages × 13 series, and the histogram of the one calling stage
		assert.Equal(t, 3*13+1, testutil.CollectAndCount(c))
		// a pipeline this fast may have every stage waiting on the others
		// most of the time, and then no stage is marked
		assert.LessOrEqual(t, testutil.ToFloat64(filterBottleneck{c}), 1.0, "at most one stage is marked")
		lint, err := testutil.CollectAndLint(c)
		require.NoError(t, err)
		assert.Empty(t, lint)
	})
	t.Run("scraped over HTTP from a real registry", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(32)...), 1, func(_ context.Context, v int) (int, error) {
			time.Sleep(time.Millisecond)
			return v, nil
		}, pipeline.Name("sleepy"))
		require.NoError(t, pipeline.Drain(p, out))
		reg := prometheus.NewRegistry()
		require.NoError(t, reg.Register(prom.NewCollector(p, "job")))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() { require.NoError(t, srv.Shutdown(context.Background())) }()
		resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.NoError(t, err)
		text := string(body)
		assert.Contains(t, text, `pipeline_stage_items_out_total{kind="fanout",pipeline="job",stage="sleepy"} 32`)
		assert.Contains(t, text, `pipeline_stage_call_duration_seconds_count{kind="fanout",pipeline="job",stage="sleepy"} 2`, "calls 0 and 16 are timed")
		assert.Contains(t, text, `pipeline_stage_call_duration_seconds_bucket{kind="fanout",pipeline="job",stage="sleepy",le="0.000524288"} 0`, "no 1 ms sleep is shorter than 2^19 ns")
		assert.Contains(t, text, `pipeline_stage_call_duration_seconds_bucket{kind="fanout",pipeline="job",stage="sleepy",le="+Inf"} 2`)
		assert.Contains(t, text, `pipeline_stage_bottleneck{kind="fanout",pipeline="job",stage="sleepy"} 1`)
	})
}

// filterBottleneck sums the bottleneck gauge over stages.
type filterBottleneck struct{ c prometheus.Collector }

func (f filterBottleneck) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }

func (f filterBottleneck) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 100)
	f.c.Collect(all)
	close(all)
	var sum float64
	for m := range all {
		if strings.Contains(m.Desc().String(), `"pipeline_stage_bottleneck"`) {
			sum += testutil.ToFloat64(constCollector{m})
		}
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("sum", "sum", nil, nil), prometheus.GaugeValue, sum)
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }
