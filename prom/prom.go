// Package prom exports a pipeline's Stats as Prometheus metrics: a
// client_golang Collector that reads [pipeline.Pipeline.Stats] at each
// scrape, so the pipeline pays nothing between scrapes.
//
//	reg.MustRegister(prom.NewCollector(p, "etl"))
//
// Every series has the labels pipeline, stage and kind:
//
//	pipeline_stage_items_in_total              counter    items taken from the input
//	pipeline_stage_items_out_total             counter    items sent on
//	pipeline_stage_items_dropped_total         counter    items filtered out or shed
//	pipeline_stage_errors_total                counter    failed calls skipped through OnError
//	pipeline_stage_retries_total               counter    re-runs of a failed call
//	pipeline_stage_wait_receive_seconds_total  counter    time waiting on an empty input
//	pipeline_stage_wait_send_seconds_total     counter    time blocked on a full output
//	pipeline_stage_queue_depth                 gauge      items in the stage's output now
//	pipeline_stage_queue_capacity              gauge      capacity of the stage's output
//	pipeline_stage_workers                     gauge      configured workers
//	pipeline_stage_busy                        gauge      calls running now
//	pipeline_stage_utilization                 gauge      share of time neither waiting nor blocked
//	pipeline_stage_bottleneck                  gauge      1 on the stage that limits the pipeline
//	pipeline_stage_call_duration_seconds       histogram  sampled call durations (stages calling a function)
//
// The histogram is the core's [pipeline.StageStats] Latency: one call in 16
// per worker is timed, so its _count counts sampled calls (use
// items_in_total for rates); its buckets are the powers of two from about
// 1 µs to about 69 s.
package prom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ec0f1147/pipeline"
)

// labels of every series.
var labels = []string{"pipeline", "stage", "kind"}

type series struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	get  func(pipeline.StageStats) float64
}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var all = []series{
	{desc("pipeline_stage_items_in_total", "Items taken from the stage's input."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return float64(s.In) }},
	{desc("pipeline_stage_items_out_total", "Items the stage sent on."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return float64(s.Out) }},
	{desc("pipeline_stage_items_dropped_total", "Items the stage filtered out or shed."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return float64(s.Dropped) }},
	{desc("pipeline_stage_errors_total", "Failed calls skipped through OnError."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return float64(s.Errors) }},
	{desc("pipeline_stage_retries_total", "Re-runs of a failed call."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return float64(s.Retries) }},
	{desc("pipeline_stage_wait_receive_seconds_total", "Time the stage's goroutines waited on an empty input."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return s.RecvWait.Seconds() }},
	{desc("pipeline_stage_wait_send_seconds_total", "Time the stage's goroutines were blocked on a full output."), prometheus.CounterValue, func(s pipeline.StageStats) float64 { return s.SendWait.Seconds() }},
	{desc("pipeline_stage_queue_depth", "Items in the stage's output channel(s) now."), prometheus.GaugeValue, func(s pipeline.StageStats) float64 { return float64(s.QueueLen) }},
	{desc("pipeline_stage_queue_capacity", "Capacity of the stage's output channel(s)."), prometheus.GaugeValue, func(s pipeline.StageStats) float64 { return float64(s.QueueCap) }},
	{desc("pipeline_stage_workers", "Configured workers of the stage."), prometheus.GaugeValue, func(s pipeline.StageStats) float64 { return float64(s.Workers) }},
	{desc("pipeline_stage_busy", "Calls of the stage's function running now."), prometheus.GaugeValue, func(s pipeline.StageStats) float64 { return float64(s.Busy) }},
	{desc("pipeline_stage_utilization", "Share of the stage's goroutine time spent neither waiting for input nor blocked on output."), prometheus.GaugeValue, func(s pipeline.StageStats) float64 { return s.Utilization }},
	{desc("pipeline_stage_bottleneck", "1 on the stage that limits the pipeline, else 0."), prometheus.GaugeValue, func(s pipeline.StageStats) float64 { return b2f(s.Bottleneck) }},
}

var durDesc = desc("pipeline_stage_call_duration_seconds", "Duration of sampled calls of the stage's function.")

// Collector is a prometheus.Collector of one pipeline's stages.
type Collector struct {
	p    *pipeline.Pipeline
	name string
}

// NewCollector returns a Collector of p's stages, with name as the value of
// the pipeline label. Register it with a prometheus.Registerer; it may be
// made before or after the stages are built, and reports a pipeline's final
// counts after it has ended.
func NewCollector(p *pipeline.Pipeline, name string) *Collector {
	return &Collector{p: p, name: name}
}

// Describe sends the descriptors of every series.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range all {
		ch <- s.desc
	}
	ch <- durDesc
}

// Collect sends the current value of every series of every stage.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.p.Stats() {
		lv := []string{c.name, st.Name, st.Kind}
		for _, s := range all {
			ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.get(st), lv...)
		}
		if st.Latency != nil {
			ch <- prometheus.MustNewConstHistogram(durDesc, st.Latency.Count(), st.Latency.Sum().Seconds(), buckets(st.Latency), lv...)
		}
	}
}

// buckets returns the cumulative counts of h at the powers of two from
// 2^10 ns to 2^36 ns, in seconds.
func buckets(h *pipeline.Histogram) map[float64]uint64 {
	out := make(map[float64]uint64, 27)
	var cum uint64
	h.Buckets(func(upper time.Duration, count uint64) {
		cum += count
		if upper >= 1<<10 && upper <= 1<<36 && upper&(upper-1) == 0 {
			out[upper.Seconds()] = cum
		}
	})
	return out
}
