package pipeline_test

// Tests of backpressure.go: Buffer, DropOnFull and Throttle.

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
)

// TestBuffer: a queue that lets upstream run ahead.
func TestBuffer(t *testing.T) {
	t.Run("takes Name, and BufferSize only when it says n", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.Buffer(p, pipeline.Generate(p, 1, 2), 8, pipeline.Name("queue"), pipeline.BufferSize(8))
		assert.Equal(t, 8, stageStats(t, p, "queue").QueueCap)
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, []int{1, 2}, got)

		p = pipeline.New(context.Background())
		out = pipeline.Buffer(p, pipeline.Generate(p, 1), 8, pipeline.BufferSize(4))
		requireClosed(t, out)
		err = p.Wait()
		assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "BufferSize(4) contradicts the queue size n = 8")
	})

	t.Run("passes every item in order", func(t *testing.T) {
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.Buffer(p, pipeline.Generate(p, ints(100)...), 5))
		require.NoError(t, err)
		assert.Equal(t, ints(100), got)

		st := p.Stats()[1]
		assert.Equal(t, "buffer", st.Kind)
		assert.Equal(t, uint64(100), st.In)
		assert.Equal(t, uint64(100), st.Out)
		assert.Equal(t, 5, st.QueueCap)
	})

	t.Run("lets upstream run n items ahead of a blocked downstream", func(t *testing.T) {
		for _, n := range []int{1, 4, 10} {
			t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
				p := pipeline.New(context.Background())
				var emitted atomic.Int64
				src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
					for i := range 100 {
						if err := emit(i); err != nil {
							return err
						}
						emitted.Add(1)
					}
					return nil
				}, pipeline.BufferSize(0))
				buf := pipeline.Buffer(p, src, n)
				gate := make(chan struct{})
				held := pipeline.FanOut(p, buf, 1, func(ctx context.Context, v int) (int, error) {
					select {
					case <-gate:
					case <-ctx.Done():
					}
					return v, nil
				}, pipeline.BufferSize(0))

				// The gated worker holds the first item, the buffer queues n items and
				// holds one more it cannot send: upstream emitted n+2, no more.
				want := int64(n + 2)
				require.Eventually(t, func() bool { return emitted.Load() == want },
					hangBound, time.Millisecond, "upstream did not run %d items ahead", n)
				st := stageStats(t, p, "buffer#2")
				assert.Equal(t, n, st.QueueLen)
				assert.Equal(t, n, st.QueueCap)
				assert.Never(t, func() bool { return emitted.Load() > want },
					50*time.Millisecond, time.Millisecond, "a full buffer must block upstream")

				close(gate)
				got, err := pipeline.Collect(p, held)
				require.NoError(t, err)
				assert.Equal(t, ints(100), got)
			})
		}
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		assertCancelEndsUnread(t, "buffer#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Buffer(p, in, 4)
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		assertStopDeliversEmitted(t, "buffer#2", false, true, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Buffer(p, in, 4)
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Buffer n=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Buffer(p, in, 0) }),
				[]string{"buffer#2", "n must be >= 1"}},
			{"Buffer n<0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Buffer(p, in, -3) }),
				[]string{"buffer#2", "n must be >= 1"}},
			{"Buffer nil input", nil, onThree(func(p *pipeline.Pipeline, _ <-chan int) <-chan int { return pipeline.Buffer[int](p, nil, 3) }),
				[]string{"buffer#2", "input"}},
		})
	})
}

// TestDropOnFull: a queue that drops what does not fit, never blocking upstream.
func TestDropOnFull(t *testing.T) {
	t.Run("never blocks upstream and keeps the first n items", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.DropOnFull(p, pipeline.Generate(p, ints(1000)...), 4)

		// Nobody reads out, yet the stage takes every item.
		require.Eventually(t, func() bool { return stageStats(t, p, "droponfull#2").In == 1000 },
			hangBound, time.Millisecond, "DropOnFull blocked its upstream")
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err, "dropping is not a failure")
		assert.Equal(t, []int{0, 1, 2, 3}, got)

		st := stageStats(t, p, "droponfull#2")
		assert.Equal(t, uint64(1000), st.In)
		assert.Equal(t, uint64(4), st.Out)
		assert.Equal(t, uint64(996), st.Dropped)
		assert.Equal(t, 4, st.QueueCap)
	})

	t.Run("conserves items under a slow consumer", func(t *testing.T) {
		const items = 20000
		p := pipeline.New(context.Background())
		out := pipeline.DropOnFull(p, pipeline.Generate(p, ints(items)...), 8)
		var got []int
		for v := range pipeline.All(p, out) {
			got = append(got, v)
			time.Sleep(20 * time.Microsecond) // a slow consumer
		}
		require.NoError(t, p.Wait(), "dropping is not a failure")

		st := stageStats(t, p, "droponfull#2")
		assert.Equal(t, uint64(items), st.In)
		assert.Equal(t, st.In, st.Out+st.Dropped, "In = Out + Dropped")
		assert.Equal(t, st.Out, uint64(len(got)), "the sink got exactly Out items")
		assert.NotZero(t, st.Dropped, "a slow consumer makes the stage drop")
		assert.True(t, sort.IntsAreSorted(got), "kept items stay in order")
		assert.Equal(t, 0, got[0])
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		assertCancelEndsUnread(t, "droponfull#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.DropOnFull(p, in, 4)
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		assertStopDeliversEmitted(t, "droponfull#2", true, true, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.DropOnFull(p, in, 4)
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"DropOnFull n=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.DropOnFull(p, in, 0) }),
				[]string{"droponfull#2", "n must be >= 1"}},
			{"DropOnFull nil input", nil, onThree(func(p *pipeline.Pipeline, _ <-chan int) <-chan int { return pipeline.DropOnFull[int](p, nil, 3) }),
				[]string{"droponfull#2", "input"}},
		})
	})
}

// TestThrottle: a rate limit of one item per interval, after a burst.
func TestThrottle(t *testing.T) {
	t.Run("burst one lets one item through per interval", func(t *testing.T) {
		const every = 20 * time.Millisecond
		p := pipeline.New(context.Background())
		start := time.Now()
		got, err := pipeline.Collect(p, pipeline.Throttle(p, pipeline.Generate(p, ints(10)...), every, 1))
		elapsed := time.Since(start)
		require.NoError(t, err)
		assert.Equal(t, ints(10), got)
		// The first item goes at once, each of the other nine waits one interval.
		assert.GreaterOrEqual(t, elapsed, 170*time.Millisecond)
	})

	t.Run("a burst lets the first items through together", func(t *testing.T) {
		const every = 300 * time.Millisecond
		p := pipeline.New(context.Background())
		start := time.Now()
		var at []time.Duration
		for range pipeline.All(p, pipeline.Throttle(p, pipeline.Generate(p, ints(7)...), every, 5)) {
			at = append(at, time.Since(start))
		}
		require.NoError(t, p.Wait())
		require.Len(t, at, 7)
		assert.Less(t, at[4], every/2, "the first five came as a burst: %v", at)
		assert.GreaterOrEqual(t, at[5], every*8/10, "the sixth waited for a token: %v", at)
		assert.GreaterOrEqual(t, at[6]-at[4], every*18/10, "then one per interval: %v", at)
	})

	t.Run("cancel while waiting for a token ends promptly", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := pipeline.New(ctx)
		out := pipeline.Throttle(p, pipeline.Generate(p, 1, 2, 3), time.Hour, 1)
		v, ok := <-out
		require.True(t, ok)
		require.Equal(t, 1, v)
		// Item 2 now waits an hour for its token.
		require.Eventually(t, func() bool { return stageStats(t, p, "throttle#2").In == 2 },
			hangBound, time.Millisecond)

		start := time.Now()
		cancel()
		err := waitErr(t, p)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), hangBound)
		_, ok = <-out
		assert.False(t, ok, "the output is closed")
	})

	t.Run("leaves no goroutine behind", func(t *testing.T) {
		for _, cancelEarly := range []bool{false, true} {
			ctx, cancel := context.WithCancel(context.Background())
			p := pipeline.New(ctx)
			out := pipeline.Throttle(p, pipeline.Generate(p, ints(5)...), 10*time.Millisecond, 2)
			<-out
			if cancelEarly {
				cancel()
			}
			for range out {
			}
			err := p.Wait()
			cancel()
			if cancelEarly {
				assert.ErrorIs(t, err, context.Canceled)
			} else {
				assert.NoError(t, err)
			}
			goleak.VerifyNone(t)
		}
	})

	t.Run("Stop keeps the rate for items still coming", func(t *testing.T) {
		const every = 20 * time.Millisecond
		p := pipeline.New(context.Background())
		gate := make(chan struct{})
		// The FanOut is not a source: after Stop it goes on, and its items
		// still pass the throttle one per interval.
		src := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3, 4, 5, 6), 1, func(ctx context.Context, v int) (int, error) {
			if v == 2 {
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			return v, nil
		})
		out := pipeline.Throttle(p, src, every, 1)
		require.Equal(t, 1, <-out)
		// Every item is emitted before the Stop (a loaded machine may not
		// have run the source yet).
		require.Eventually(t, func() bool { return stageStats(t, p, "generate#1").Out == 6 }, hangBound, time.Millisecond)
		p.Stop()
		close(gate)
		start := time.Now()
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, []int{2, 3, 4, 5, 6}, got)
		assert.GreaterOrEqual(t, time.Since(start), 4*every*8/10)
	})

	t.Run("a parent deadline before the next token fails instead of losing items", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		p := pipeline.New(ctx)
		got, err := pipeline.Collect(p, pipeline.Throttle(p, pipeline.Generate(p, 1, 2, 3), time.Hour, 1))
		assert.Equal(t, []int{1}, got)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "items 2 and 3 were lost: Wait must say why")
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		assertCancelEndsUnread(t, "throttle#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Throttle(p, in, 50*time.Microsecond, 8)
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		assertStopDeliversEmitted(t, "throttle#2", false, true, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Throttle(p, in, 50*time.Microsecond, 8)
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Throttle every=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Throttle(p, in, 0, 1) }),
				[]string{"throttle#2", "every"}},
			{"Throttle every<0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Throttle(p, in, -time.Second, 1) }),
				[]string{"throttle#2", "every"}},
			{"Throttle burst=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Throttle(p, in, time.Millisecond, 0)
			}), []string{"throttle#2", "burst"}},
			{"Throttle nil input", nil, onThree(func(p *pipeline.Pipeline, _ <-chan int) <-chan int {
				return pipeline.Throttle[int](p, nil, time.Millisecond, 1)
			}), []string{"throttle#2", "input"}},
			{"Timeout on a Throttle", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Throttle(p, in, time.Millisecond, 1, pipeline.Timeout(time.Second))
			}), []string{"throttle#2", "Timeout"}},
		})
	})
}
