package prom_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/prom"
)

// Register a pipeline's collector; serve the registry with promhttp.
func ExampleNewCollector() {
	p := pipeline.New(context.Background())
	reg := prometheus.NewRegistry()
	c := prom.NewCollector(p, "demo")
	reg.MustRegister(c)
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) { return v, nil })
	if err := pipeline.Drain(p, out); err != nil {
		fmt.Println(err)
	}
	n, err := testutil.GatherAndCount(reg, "pipeline_stage_items_out_total")
	fmt.Println(n, err)
	// Output:
	// 2 <nil>
}
