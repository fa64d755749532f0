package pipeline_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
)

// A slow stage between two fast ones: Stats says it is the bottleneck, and
// its Latency gives the distribution of its calls.
func ExampleStageStats_bottleneck() {
	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(1))
	src := pipeline.Generate(p, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
	slow := pipeline.FanOut(p, src, 1, func(_ context.Context, v int) (int, error) {
		time.Sleep(3 * time.Millisecond)
		return v, nil
	}, pipeline.Name("slow"))
	out := pipeline.FanOut(p, slow, 1, func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Name("fast"))
	if err := pipeline.Drain(p, out); err != nil {
		fmt.Println(err)
	}
	for _, st := range p.Stats() {
		if st.Bottleneck {
			fmt.Println("bottleneck:", st.Name)
			fmt.Println("p50 at least 3ms:", st.Latency.Quantile(0.5) >= 3*time.Millisecond*7/8)
		}
	}
	// Output:
	// bottleneck: slow
	// p50 at least 3ms: true
}

// Merge the latency of two stages into one distribution.
func ExampleHistogram_Merge() {
	p := pipeline.New(context.Background())
	a := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) { return v, nil })
	b := pipeline.FanOut(p, a, 1, func(_ context.Context, v int) (int, error) { return v, nil })
	if err := pipeline.Drain(p, b); err != nil {
		fmt.Println(err)
	}
	var all pipeline.Histogram
	for _, st := range p.Stats() {
		all.Merge(st.Latency) // nil for the source: merges nothing
	}
	fmt.Println("calls timed:", all.Count()) // the first call of each worker is timed
	// Output:
	// calls timed: 2
}

// The quantiles of a stage's call durations.
func ExampleHistogram_Quantile() {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2), 1, func(_ context.Context, v int) (int, error) {
		time.Sleep(2 * time.Millisecond)
		return v, nil
	}, pipeline.Name("sleepy"))
	if err := pipeline.Drain(p, out); err != nil {
		fmt.Println(err)
	}
	lat := p.Stats()[1].Latency
	fmt.Println(lat.Quantile(0.5) >= 2*time.Millisecond*7/8, lat.Quantile(0.99) >= lat.Quantile(0.5))
	// Output:
	// true true
}

// countCalls is an Observer that counts stages and the calls it hears of.
type countCalls struct {
	stages, calls, failed atomic.Int64
}

func (c *countCalls) StageStarted(pipeline.StageInfo)                      { c.stages.Add(1) }
func (c *countCalls) StageEnded(pipeline.StageInfo, pipeline.StageStats)   {}
func (c *countCalls) PipelineEnded(err error, final []pipeline.StageStats) {}
func (c *countCalls) CallEvery() int                                       { return 1 }
func (c *countCalls) Call(ci pipeline.CallInfo) {
	c.calls.Add(1)
	if ci.Err != nil {
		c.failed.Add(1)
	}
}

// An observer given to New hears of every stage and, as CallEvery asks, of
// calls of the stages' functions.
func ExampleWithObserver() {
	obs := &countCalls{}
	p := pipeline.New(context.Background(), pipeline.WithObserver(obs))
	src := pipeline.Generate(p, 1, 2, 3, 4)
	err := pipeline.ForEach(p, src, 2, func(_ context.Context, v int) error { return nil })
	fmt.Println(err, obs.stages.Load(), obs.calls.Load(), obs.failed.Load())
	// Output:
	// <nil> 2 4 0
}

// TimedDiagram draws the pipeline with where the time goes.
func ExamplePipeline_TimedDiagram() {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) { return v, nil })
	if err := pipeline.Drain(p, out); err != nil {
		fmt.Println(err)
	}
	d := p.TimedDiagram()
	fmt.Println(len(d) > len(p.Diagram()))
	// Output:
	// true
}

// Count, Sum and Mean of the calls a stage timed.
func ExampleHistogram_Count() {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) {
		time.Sleep(time.Millisecond)
		return v, nil
	})
	if err := pipeline.Drain(p, out); err != nil {
		fmt.Println(err)
	}
	lat := p.Stats()[1].Latency
	fmt.Println(lat.Count(), lat.Sum() >= time.Millisecond, lat.Mean() == lat.Sum())
	// Output:
	// 1 true true
}

// The raw buckets, for an exporter: upper bounds and counts.
func ExampleHistogram_Buckets() {
	var h pipeline.Histogram // empty
	n := 0
	h.Buckets(func(upper time.Duration, count uint64) {
		if n < 3 {
			fmt.Println(upper, count)
		}
		n++
	})
	fmt.Println(n, "buckets")
	// Output:
	// 64ns 0
	// 80ns 0
	// 96ns 0
	// 137 buckets
}
