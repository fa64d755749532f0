package pipeline_test

// Tests of split.go: Tee and Partition.

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestTee: every item to every output.
func TestTee(t *testing.T) {
	// Regression: Tee or Partition with n far above the limit, on a finished pipeline, allocated 1<<20 outputs.
	t.Run("n out of range returns no outputs and allocates none, also after Wait", func(t *testing.T) {
		p := pipeline.New(context.Background())
		require.NoError(t, p.Wait())
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		outs := pipeline.Tee(p, pipeline.Generate(p, 1), 1<<30)
		parts := pipeline.Partition(p, pipeline.Generate(p, 1), 1<<30, routeToFirst)
		runtime.ReadMemStats(&after)
		assert.Empty(t, outs)
		assert.Empty(t, parts)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
	})

	t.Run("takes Name and BufferSize", func(t *testing.T) {
		p := pipeline.New(context.Background())
		outs := pipeline.Tee(p, pipeline.Generate(p, 1, 2), 2, pipeline.Name("copy"), pipeline.BufferSize(5))
		st := stageStats(t, p, "copy")
		assert.Equal(t, 10, st.QueueCap)
		got := readAll(outs)
		assert.Equal(t, [][]int{{1, 2}, {1, 2}}, got)
		require.NoError(t, p.Wait())
	})

	t.Run("sends every item to every output in order", func(t *testing.T) {
		const n = 200
		for _, outputs := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("n=%d", outputs), func(t *testing.T) {
				p := pipeline.New(context.Background())
				outs := pipeline.Tee(p, pipeline.Generate(p, ints(n)...), outputs)
				require.Len(t, outs, outputs)
				got := readAll(outs)
				require.NoError(t, p.Wait())
				for i := range got {
					assert.Equal(t, ints(n), got[i], "output %d", i)
				}
				st := stageStats(t, p, "tee#2")
				assert.Equal(t, uint64(n), st.In)
				assert.Equal(t, uint64(n), st.Out)
			})
		}
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Tee n 0", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Tee(p, three(p), 0)...) },
				[]string{"tee#2", "n = 0"}},
			{"Tee n negative", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Tee(p, three(p), -2)...) },
				[]string{"tee#2", "n = -2"}},
			{"Tee nil in", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Tee(p, nilInts, 2)...) },
				[]string{"tee#1", "input"}},
		})
	})
}

// TestPartition: every item to the output its route picks.
func TestPartition(t *testing.T) {
	t.Run("takes Name and BufferSize", func(t *testing.T) {
		p := pipeline.New(context.Background())
		outs := pipeline.Partition(p, pipeline.Generate(p, 1, 2, 3), 3, func(v int) int { return v }, pipeline.Name("route"), pipeline.BufferSize(2))
		st := stageStats(t, p, "route")
		assert.Equal(t, 6, st.QueueCap)
		got := readAll(outs)
		assert.Equal(t, [][]int{{3}, {1}, {2}}, got)
		require.NoError(t, p.Wait())
	})

	t.Run("routes each item to route mod n", func(t *testing.T) {
		routes := []int{0, 1, 2, 3, 4, 5, -1, -2, -3, -4, -5, -7, 7, 100, -100,
			math.MaxInt, math.MaxInt - 1, math.MinInt, math.MinInt + 1}
		for _, n := range []int{1, 3, 4} {
			t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
				p := pipeline.New(context.Background())
				outs := pipeline.Partition(p, pipeline.Generate(p, routes...), n, func(v int) int { return v })
				require.Len(t, outs, n)
				got := readAll(outs)
				require.NoError(t, p.Wait())
				want := make([][]int, n)
				for _, r := range routes {
					i := ((r % n) + n) % n
					want[i] = append(want[i], r)
				}
				assert.Equal(t, want, got)
			})
		}
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Partition n 0", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.Partition(p, three(p), 0, func(v int) int { return v })...)
			}, []string{"partition#2", "n = 0"}},
			{"Partition n negative", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.Partition(p, three(p), -1, func(v int) int { return v })...)
			}, []string{"partition#2", "n = -1"}},
			{"Partition nil route", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Partition(p, three(p), 2, nil)...) },
				[]string{"partition#2", "route"}},
			{"Partition nil in", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.Partition(p, nilInts, 2, func(v int) int { return v })...)
			}, []string{"partition#1", "input"}},
		})
	})
}
