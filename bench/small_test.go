package bench

import (
	"context"
	"testing"
)

// BenchmarkSmall is a small pipeline built and run per call, as a server
// would per request: generate → map(x*3) on four workers → filter(even) →
// collect, over 10 items, in completion order and in input order. Figures
// are per pipeline (ns/pipeline, allocs/pipeline, B/pipeline): the cost of
// building and tearing one down dominates.
func BenchmarkSmall(b *testing.B) {
	in := ints(smallItems)
	n := len(want(in, mapFilter))
	for _, order := range []struct {
		name string
		cs   []contender
	}{{"unordered", unordered}, {"ordered", ordered}} {
		b.Run("order="+order.name, func(b *testing.B) {
			for _, c := range order.cs {
				b.Run("impl="+c.impl, func(b *testing.B) {
					measurePer(b, "pipeline", 1, n, func() (int, error) {
						out, err := c.run(context.Background(), in, smallWorkers, mapFilter)
						return len(out), err
					})
				})
			}
		})
	}
}

const (
	smallItems   = 10
	smallWorkers = 4
)
