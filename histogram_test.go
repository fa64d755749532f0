package pipeline_test

// Tests of histogram.go: the buckets, quantiles and merging of Histogram.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// latencyOf runs Generate(n items) → FanOut(fn) → Drain and returns the
// FanOut stage's Latency.
func latencyOf(t *testing.T, n, workers int, fn func(context.Context, int) (int, error)) *pipeline.Histogram {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(n)...), workers, fn, pipeline.Name("f"))
	require.NoError(t, pipeline.Drain(p, out))
	return stageStats(t, p, "f").Latency
}

// TestHistogram: quantiles within the buckets' error, merging, empty reads.
func TestHistogram(t *testing.T) {
	t.Run("an empty or nil histogram reads as zero", func(t *testing.T) {
		var nilH *pipeline.Histogram
		assert.Zero(t, nilH.Count())
		assert.Zero(t, nilH.Quantile(0.5))
		assert.Zero(t, nilH.Sum())
		assert.Zero(t, nilH.Mean())
		assert.Zero(t, new(pipeline.Histogram).Quantile(0.99))
	})
	t.Run("the quantiles of sleeping calls are near the sleep", func(t *testing.T) {
		h := latencyOf(t, 64, 1, func(_ context.Context, v int) (int, error) {
			time.Sleep(2 * time.Millisecond)
			return v, nil
		})
		require.NotNil(t, h)
		assert.Equal(t, uint64(4), h.Count(), "one call in 16 of 64 is timed")
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
			got := h.Quantile(q)
			assert.GreaterOrEqual(t, got, 2*time.Millisecond*7/8, "q%v", q)
			assert.Less(t, got, 200*time.Millisecond, "q%v", q)
		}
		assert.GreaterOrEqual(t, h.Sum(), 8*time.Millisecond)
		assert.GreaterOrEqual(t, h.Mean(), 2*time.Millisecond)
	})
	t.Run("merging adds the counts, and the quantiles follow", func(t *testing.T) {
		fast := latencyOf(t, 160, 1, identity)
		slow := latencyOf(t, 16, 1, func(_ context.Context, v int) (int, error) {
			time.Sleep(5 * time.Millisecond)
			return v, nil
		})
		require.Equal(t, uint64(10), fast.Count())
		require.Equal(t, uint64(1), slow.Count())
		var all pipeline.Histogram
		all.Merge(fast)
		all.Merge(slow)
		all.Merge(nil)
		assert.Equal(t, uint64(11), all.Count())
		assert.Equal(t, fast.Sum()+slow.Sum(), all.Sum())
		assert.Less(t, all.Quantile(0.5), time.Millisecond, "the median is a fast call")
		assert.GreaterOrEqual(t, all.Quantile(1), 5*time.Millisecond*7/8, "the maximum is the slow call")
	})
	t.Run("buckets are increasing and hold every count", func(t *testing.T) {
		h := latencyOf(t, 320, 4, identity)
		var last time.Duration
		var total uint64
		n := 0
		h.Buckets(func(upper time.Duration, count uint64) {
			assert.Greater(t, upper, last)
			last = upper
			total += count
			n++
		})
		assert.Equal(t, h.Count(), total)
		assert.Equal(t, 137, n)
		assert.Equal(t, 64*time.Nanosecond, firstUpper(h))
	})
}

func firstUpper(h *pipeline.Histogram) (first time.Duration) {
	h.Buckets(func(upper time.Duration, _ uint64) {
		if first == 0 {
			first = upper
		}
	})
	return first
}
