package pipeline_test

// Tests of ordered.go: FanOutOrdered.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestFanOutOrdered: FanOut that sends results in input order.
func TestFanOutOrdered(t *testing.T) {
	// Regression: a large accepted worker count allocated the whole reorder window up front (out of memory).
	t.Run("a large worker count allocates no window up front", func(t *testing.T) {
		type big [60 << 10]byte // 4096 workers: a 16,384-result window of these would be 960 MiB
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p := pipeline.New(context.Background())
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(64)...), 4096, func(_ context.Context, v int) (big, error) {
			var b big
			b[0] = byte(v)
			return b, nil
		}, pipeline.BufferSize(0))
		n := 0
		for b := range pipeline.All(p, out) {
			assert.Equal(t, byte(n), b[0], "input order")
			n++
		}
		require.NoError(t, p.Wait())
		runtime.ReadMemStats(&after)
		assert.Equal(t, 64, n)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(512<<20), "memory follows the results, not the worker count")
	})

	t.Run("keeps input order under random delay", func(t *testing.T) {
		const n = 300
		for _, workers := range []int{1, 2, 5, 16} {
			t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
				p := pipeline.New(context.Background())
				out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(n)...), workers,
					func(_ context.Context, v int) (string, error) {
						d := rand.N(200 * time.Microsecond)
						if v%40 == 0 {
							d = 2 * time.Millisecond // a slow head: later results must wait for it
						}
						time.Sleep(d)
						return strconv.Itoa(v), nil
					})
				got, err := pipeline.Collect(p, out)
				require.NoError(t, err)
				want := make([]string, n)
				for i := range want {
					want[i] = strconv.Itoa(i)
				}
				assert.Equal(t, want, got)
			})
		}
	})

	t.Run("skipped items leave no gap", func(t *testing.T) {
		const n = 300
		skip := errors.New("skip")
		for _, workers := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
				p := pipeline.New(context.Background())
				out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(n)...), workers,
					func(_ context.Context, v int) (int, error) {
						time.Sleep(rand.N(100 * time.Microsecond))
						if v%3 == 0 {
							return 0, skip
						}
						return v, nil
					}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
				got, err := pipeline.Collect(p, out)
				require.NoError(t, err)
				var want []int
				for i := range n {
					if i%3 != 0 {
						want = append(want, i)
					}
				}
				assert.Equal(t, want, got)
				st := stageStats(t, p, "fanoutordered#2")
				assert.Equal(t, uint64(n/3), st.Errors)
				assert.Equal(t, uint64(len(want)), st.Out)
			})
		}
	})

	t.Run("runs exactly workers calls at once", func(t *testing.T) {
		assertWorkersBound(t, func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.Drain(p, pipeline.FanOutOrdered(p, in, w, func(ctx context.Context, v int) (int, error) {
				call(ctx)
				return v, nil
			}))
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FanOutOrdered workers 0", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOutOrdered(p, three(p), 0, identity))
			}, []string{"fanoutordered#2", "workers"}},
			{"FanOutOrdered workers negative", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOutOrdered(p, three(p), -1, identity))
			}, []string{"fanoutordered#2", "workers"}},
			{"FanOutOrdered nil fn", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOutOrdered(p, three(p), 1, nilFn))
			}, []string{"fanoutordered#2", "fn"}},
			{"FanOutOrdered nil in", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOutOrdered(p, nilInts, 1, identity))
			}, []string{"fanoutordered#1", "input"}},
		})
	})
}
