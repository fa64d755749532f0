package pipeline_test

// Tests of options.go: the stage options Name, BufferSize, OnError,
// Timeout and Retry, and DefaultBackoff. Limit is in limit_test.go.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestName: a stage's name in its stats and errors.
func TestName(t *testing.T) {
	t.Run("an argument error names the stage by its Name", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FanOut named", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOut(p, three(p), 0, identity, pipeline.Name("square")))
			}, []string{"square", "workers"}},
		})
	})
}

// TestBufferSize: a stage's output buffer.
func TestBufferSize(t *testing.T) {
	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FanOut BufferSize negative", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOut(p, three(p), 1, identity, pipeline.BufferSize(-1)))
			}, []string{"fanout#2", "BufferSize(-1)"}},
			{"Produce BufferSize negative", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.Produce(p, func(context.Context, func(int) error) error { return nil }, pipeline.BufferSize(-4)))
			}, []string{"produce#1", "BufferSize(-4)"}},
		})
	})
}

// TestOnError: the handler that decides whether a failed item fails the pipeline.
func TestOnError(t *testing.T) {
	// Regression: OnError on a FanOut[any] called Discard, though an interface type parameter never is a Discarder.
	t.Run("skips without telling an item of an interface type", func(t *testing.T) {
		p := pipeline.New(context.Background())
		item := &ticket{}
		out := pipeline.FanOut(p, pipeline.Generate[any](p, item), 1, func(context.Context, any) (any, error) {
			return nil, errors.New("no")
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		require.NoError(t, pipeline.Drain(p, out))
		assert.Zero(t, item.told())

		p = pipeline.New(context.Background())
		out2 := pipeline.FanOut(p, pipeline.Generate(p, item), 1, func(context.Context, *ticket) (int, error) {
			return 0, errors.New("no")
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		require.NoError(t, pipeline.Drain(p, out2))
		assert.Equal(t, 1, item.told(), "a concrete Discarder type is told")
	})

	t.Run("a handler's error fails the pipeline", func(t *testing.T) {
		bad := errors.New("bad item")
		fatal := errors.New("core: too many bad items")
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), 1, func(_ context.Context, v int) (int, error) {
			if v == 4 {
				return 0, bad
			}
			return v, nil
		}, pipeline.OnError(func(se *pipeline.StageError) error {
			if se.Item == 4 {
				return fatal
			}
			return nil
		}))
		_, err := pipeline.Collect(p, out)
		assert.Equal(t, fatal, err)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FanOut OnError nil", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FanOut(p, three(p), 1, identity, pipeline.OnError(nil)))
			}, []string{"fanout#2", "OnError"}},
		})
	})
}

// TestTimeout: a deadline for every call.
func TestTimeout(t *testing.T) {
	t.Run("gives every call a deadline", func(t *testing.T) {
		const d = time.Minute
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(20)...), 4, func(ctx context.Context, v int) (time.Duration, error) {
			deadline, ok := ctx.Deadline()
			if !ok {
				return 0, errors.New("no deadline")
			}
			return time.Until(deadline), nil
		}, pipeline.Timeout(d))
		left, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		require.Len(t, left, 20)
		for _, l := range left {
			assert.LessOrEqual(t, l, d)
			assert.Greater(t, l, d-10*time.Second)
		}
	})

	t.Run("a hung call fails with DeadlineExceeded", func(t *testing.T) {
		cases := map[string]func(ctx context.Context) error{
			"returns ctx.Err()":          func(ctx context.Context) error { return ctx.Err() },
			"returns context.Cause(ctx)": func(ctx context.Context) error { return context.Cause(ctx) },
			"returns its own error":      func(context.Context) error { return errors.New("gave up") },
		}
		for name, ret := range cases {
			t.Run(name, func(t *testing.T) {
				p := pipeline.New(context.Background())
				out := pipeline.FanOut(p, pipeline.Generate(p, 7), 1, func(ctx context.Context, v int) (int, error) {
					<-ctx.Done()
					return 0, ret(ctx)
				}, pipeline.Timeout(20*time.Millisecond), pipeline.Name("hung"))
				start := time.Now()
				_, err := pipeline.Collect(p, out)
				assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond*9/10)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				var se *pipeline.StageError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, "hung", se.Stage)
				assert.Equal(t, 7, se.Item)
			})
		}
	})

	t.Run("OnError skips the timed-out item and goes on", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var skipped []*pipeline.StageError
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 2, func(ctx context.Context, v int) (int, error) {
			if v == 3 {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return v * 10, nil
		}, pipeline.Timeout(20*time.Millisecond), pipeline.OnError(func(se *pipeline.StageError) error {
			skipped = append(skipped, se)
			return nil
		}))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, []int{10, 20, 40, 50}, got)
		require.Len(t, skipped, 1)
		assert.Equal(t, 3, skipped[0].Item)
		assert.ErrorIs(t, skipped[0], context.DeadlineExceeded)
		assert.Equal(t, uint64(1), stageStats(t, p, "fanoutordered#2").Errors)
	})

	t.Run("each Retry attempt has its own deadline", func(t *testing.T) {
		const d = 30 * time.Millisecond
		var attempts atomic.Int64
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(ctx context.Context, v int) (int, error) {
			if attempts.Add(1) < 3 {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("third attempt started with a dead context: %w", err)
			}
			deadline, ok := ctx.Deadline()
			if !ok || time.Until(deadline) > d {
				return 0, errors.New("third attempt has no fresh deadline")
			}
			return v, nil
		}, pipeline.Timeout(d), pipeline.Retry(3, func(int) time.Duration { return 0 }))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, []int{1}, got)
		assert.Equal(t, int64(3), attempts.Load())
		assert.Equal(t, uint64(2), stageStats(t, p, "fanout#2").Retries)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Timeout=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 2, identity, pipeline.Timeout(0))
			}), []string{"fanout#2", "Timeout(0s)"}},
			{"Timeout<0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 2, identity, pipeline.Timeout(-time.Second))
			}), []string{"fanout#2", "Timeout(-1s)"}},
		})
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		assertCancelEndsUnread(t, "fanout#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 4, identity, pipeline.Timeout(time.Minute))
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		assertStopDeliversEmitted(t, "fanout#2", false, false, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 4, identity, pipeline.Timeout(time.Minute))
		})
	})
}

// TestRetry: more attempts for a failed call, with a backoff between them.
func TestRetry(t *testing.T) {
	t.Run("waits backoff of each attempt and fails with the last error", func(t *testing.T) {
		var mu sync.Mutex
		var waits []int
		var calls atomic.Int64
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(ctx context.Context, v int) (int, error) {
			return 0, fmt.Errorf("attempt %d failed", calls.Add(1))
		}, pipeline.Retry(4, func(attempt int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, attempt)
			return time.Millisecond
		}), pipeline.Name("flaky"))
		_, err := pipeline.Collect(p, out)
		var se *pipeline.StageError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "flaky", se.Stage)
		assert.EqualError(t, se.Err, "attempt 4 failed")
		assert.Equal(t, int64(4), calls.Load())
		assert.Equal(t, []int{1, 2, 3}, waits, "backoff(n) before attempt n+1")
		assert.Equal(t, uint64(3), stageStats(t, p, "flaky").Retries)
	})

	t.Run("delivers an item that succeeds on a later attempt", func(t *testing.T) {
		var mu sync.Mutex
		failures := map[int]int{}
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(20)...), 4, func(ctx context.Context, v int) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures[v] < v%3 { // item v fails v%3 times, then works
				failures[v]++
				return 0, errors.New("not yet")
			}
			return v, nil
		}, pipeline.Retry(3, func(int) time.Duration { return 0 }))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		sort.Ints(got)
		assert.Equal(t, ints(20), got)
		var want uint64
		for _, v := range ints(20) {
			want += uint64(v % 3)
		}
		st := stageStats(t, p, "fanout#2")
		assert.Equal(t, want, st.Retries)
		assert.Zero(t, st.Errors)
	})

	t.Run("the last error goes to OnError", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var calls atomic.Int64
		var skipped []*pipeline.StageError
		out := pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3), 1, func(ctx context.Context, v int) (int, error) {
			if v == 2 {
				return 0, fmt.Errorf("bad item, call %d", calls.Add(1))
			}
			return v, nil
		}, pipeline.Retry(2, func(int) time.Duration { return 0 }), pipeline.OnError(func(se *pipeline.StageError) error {
			skipped = append(skipped, se)
			return nil
		}))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, []int{1, 3}, got)
		require.Len(t, skipped, 1)
		assert.Equal(t, 2, skipped[0].Item)
		assert.EqualError(t, skipped[0].Err, "bad item, call 2")
		st := stageStats(t, p, "fanoutordered#2")
		assert.Equal(t, uint64(1), st.Retries)
		assert.Equal(t, uint64(1), st.Errors)
	})

	t.Run("one attempt means no retry", func(t *testing.T) {
		var calls atomic.Int64
		p := pipeline.New(context.Background())
		err := pipeline.ForEach(p, pipeline.Generate(p, 1), 1, func(context.Context, int) error {
			calls.Add(1)
			return errors.New("no")
		}, pipeline.Retry(1, func(int) time.Duration { panic("no backoff for one attempt") }))
		require.Error(t, err)
		assert.NotErrorAs(t, err, new(*pipeline.PanicError))
		assert.Equal(t, int64(1), calls.Load())
		assert.Zero(t, stageStats(t, p, "foreach#2").Retries)
	})

	t.Run("does not retry panics", func(t *testing.T) {
		var calls atomic.Int64
		p := pipeline.New(context.Background())
		_, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) {
			calls.Add(1)
			panic("boom")
		}, pipeline.Retry(5, func(int) time.Duration { return 0 })))
		var pe *pipeline.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "boom", pe.Value)
		assert.Equal(t, int64(1), calls.Load())
		assert.Zero(t, stageStats(t, p, "fanout#2").Retries)
	})

	t.Run("cancel aborts the backoff wait promptly", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls atomic.Int64
		failed := make(chan struct{})
		p := pipeline.New(ctx)
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) {
			if calls.Add(1) == 1 {
				close(failed)
			}
			return 0, errors.New("fails")
		}, pipeline.Retry(3, func(int) time.Duration { return time.Hour }))
		<-failed
		require.Eventually(t, func() bool { return stageStats(t, p, "fanout#2").Retries == 1 }, hangBound, time.Millisecond)

		start := time.Now()
		cancel()
		err := waitErr(t, p)
		assert.Less(t, time.Since(start), hangBound)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(1), calls.Load(), "no attempt after cancel")
		for range out {
		}
	})

	t.Run("a nil backoff waits DefaultBackoff", func(t *testing.T) {
		// With a nil backoff each retry waits DefaultBackoff(1), a random wait in
		// [0, 50ms): ten of them add up to well above zero, and none is long.
		const items = 10
		var mu sync.Mutex
		last := map[int]time.Time{}
		var gaps []time.Duration
		p := pipeline.New(context.Background())
		err := pipeline.ForEach(p, pipeline.Generate(p, ints(items)...), 1, func(_ context.Context, v int) error {
			mu.Lock()
			defer mu.Unlock()
			if at, ok := last[v]; ok {
				gaps = append(gaps, time.Since(at))
				return nil
			}
			last[v] = time.Now()
			return errors.New("first attempt fails")
		}, pipeline.Retry(2, nil))
		require.NoError(t, err)
		require.Len(t, gaps, items)
		var total time.Duration
		for _, g := range gaps {
			total += g
			assert.Less(t, g, 50*time.Millisecond+time.Second, "a first retry waits under 50ms (plus scheduling)")
		}
		// The mean wait is 25ms; ten waits below 60ms in all has a probability
		// of about 2e-6.
		assert.Greater(t, total, 60*time.Millisecond, "nil backoff did not wait: %v", gaps)
		assert.Equal(t, uint64(items), stageStats(t, p, "foreach#2").Retries)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Retry attempts=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 2, identity, pipeline.Retry(0, nil))
			}), []string{"fanout#2", "Retry(0)"}},
			{"Retry attempts<0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 2, identity, pipeline.Retry(-2, nil))
			}), []string{"fanout#2", "Retry(-2)"}},
		})
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		assertCancelEndsUnread(t, "fanout#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 4, identity, pipeline.Retry(3, nil))
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		assertStopDeliversEmitted(t, "fanout#2", false, false, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 4, identity, pipeline.Retry(3, nil))
		})
	})
}

// TestDefaultBackoff: the jittered exponential wait Retry uses by default.
func TestDefaultBackoff(t *testing.T) {
	t.Run("is a random wait below the exponential cap", func(t *testing.T) {
		capOf := func(n int) time.Duration {
			c := 5 * time.Second
			if n < 1 {
				n = 1
			}
			if n <= 20 {
				c = min(c, 50*time.Millisecond<<(n-1))
			}
			return c
		}
		for _, n := range []int{-1, 0, 1, 2, 3, 5, 7, 8, 10, 30, 64, 1000} {
			t.Run(fmt.Sprintf("attempt=%d", n), func(t *testing.T) {
				limit := capOf(n)
				var hi time.Duration
				seen := map[time.Duration]bool{}
				for range 2000 {
					d := pipeline.DefaultBackoff(n)
					require.GreaterOrEqual(t, d, time.Duration(0))
					require.Less(t, d, limit)
					hi = max(hi, d)
					seen[d] = true
				}
				// 2000 uniform draws all in the lower half: probability 2^-2000.
				assert.GreaterOrEqual(t, hi, limit/2, "the waits do not spread up to the cap")
				assert.Greater(t, len(seen), 100, "the waits are not jittered")
			})
		}
		assert.Equal(t, 50*time.Millisecond, capOf(1))
		assert.Equal(t, 3200*time.Millisecond, capOf(7))
		assert.Equal(t, 5*time.Second, capOf(8))
	})
}
