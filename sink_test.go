package pipeline_test

// Tests of sink.go: Collect, ForEach, Reduce, First, Drain and All.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
)

// TestCollect: every item into a slice.
func TestCollect(t *testing.T) {
	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Collect nil in", nil, func(p *pipeline.Pipeline) built {
				_, err := pipeline.Collect(p, nilInts)
				return sinkResult(err)
			}, []string{"collect", "input"}},
		})
	})
}

// TestForEach: a function on every item, by a number of workers, as the sink.
func TestForEach(t *testing.T) {
	t.Run("calls fn on every item", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var sum atomic.Int64
		err := pipeline.ForEach(p, pipeline.Generate(p, ints(101)...), 3, func(_ context.Context, v int) error {
			sum.Add(int64(v))
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, int64(5050), sum.Load())
		st := stageStats(t, p, "foreach#2")
		assert.Equal(t, uint64(101), st.In)
		assert.Equal(t, st.In, st.Out)
	})

	t.Run("an error fails the pipeline", func(t *testing.T) {
		boom := errors.New("cannot store")
		p := pipeline.New(context.Background())
		err := pipeline.ForEach(p, pipeline.Generate(p, ints(20)...), 2, func(_ context.Context, v int) error {
			if v == 5 {
				return boom
			}
			return nil
		})
		var se *pipeline.StageError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "foreach#2", se.Stage)
		assert.Equal(t, 5, se.Item)
		assert.ErrorIs(t, err, boom)
	})

	t.Run("OnError skips failed items", func(t *testing.T) {
		boom := errors.New("cannot store")
		p := pipeline.New(context.Background())
		var skipped []any
		var mu sync.Mutex
		err := pipeline.ForEach(p, pipeline.Generate(p, ints(20)...), 2, func(_ context.Context, v int) error {
			if v%5 == 0 {
				return boom
			}
			return nil
		}, pipeline.OnError(func(se *pipeline.StageError) error {
			mu.Lock()
			defer mu.Unlock()
			skipped = append(skipped, se.Item)
			return nil
		}))
		require.NoError(t, err)
		assert.ElementsMatch(t, []any{0, 5, 10, 15}, skipped)
		st := stageStats(t, p, "foreach#2")
		assert.Equal(t, uint64(4), st.Errors)
		assert.Equal(t, st.In, st.Out+st.Errors)
	})

	t.Run("runs exactly workers calls at once", func(t *testing.T) {
		assertWorkersBound(t, func(p *pipeline.Pipeline, in <-chan int, w int, call func(context.Context)) error {
			return pipeline.ForEach(p, in, w, func(ctx context.Context, _ int) error {
				call(ctx)
				return nil
			})
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"ForEach workers 0", nil, func(p *pipeline.Pipeline) built { return sinkResult(pipeline.ForEach(p, three(p), 0, doNothing)) },
				[]string{"foreach#2", "workers"}},
			{"ForEach workers negative", nil, func(p *pipeline.Pipeline) built { return sinkResult(pipeline.ForEach(p, three(p), -1, doNothing)) },
				[]string{"foreach#2", "workers"}},
			{"ForEach nil fn", nil, func(p *pipeline.Pipeline) built { return sinkResult(pipeline.ForEach(p, three(p), 1, nilEach)) },
				[]string{"foreach#2", "fn"}},
			{"ForEach nil in", nil, func(p *pipeline.Pipeline) built { return sinkResult(pipeline.ForEach(p, nilInts, 1, doNothing)) },
				[]string{"foreach#1", "input"}},
		})
	})
}

// shutdownDuringReduce runs Reduce over three buffered items; while it
// folds the first, another goroutine calls Shutdown (which may return at once,
// since Generate's goroutine has ended, or wait for the sink), and the second
// panics. It returns Reduce's error, Shutdown's and Wait's afterwards.
func shutdownDuringReduce(t *testing.T) (reduceErr, shutdownErr, waitResult error) {
	p := pipeline.New(context.Background())
	in := pipeline.Generate(p, 1, 2, 3) // all three fit in the output buffer
	shut := make(chan error, 1)
	_, reduceErr = pipeline.Reduce(p, in, 0, func(acc, v int) int {
		switch v {
		case 1:
			go func() { shut <- p.Shutdown(context.Background()) }()
			select { // give Shutdown the chance to return before the panic
			case err := <-shut:
				shut <- err
			case <-time.After(100 * time.Millisecond):
			}
		case 2:
			panic("boom")
		}
		return acc + v
	})
	return reduceErr, <-shut, p.Wait()
}

// TestReduce: every item folded into one value on the caller's goroutine.
func TestReduce(t *testing.T) {
	t.Run("folds every item", func(t *testing.T) {
		p := pipeline.New(context.Background())
		sq := pipeline.FanOut(p, pipeline.Generate(p, ints(101)...), 4, identity)
		sum, err := pipeline.Reduce(p, sq, 0, func(a, v int) int { return a + v })
		require.NoError(t, err)
		assert.Equal(t, 5050, sum)
	})

	// Regression: a panic in Reduce's fn after Wait had returned was dropped and Reduce returned nil (issue 6, chaos run).
	// Reduce runs fn on the caller's goroutine, which Wait does not count: a
	// Shutdown (or any Wait) from elsewhere can finish the pipeline while Reduce
	// still folds buffered items. fail then ignored errors once Wait had returned,
	// so a later panic in fn was dropped and Reduce returned nil ("panics become
	// errors"). Found by the chaos run (Reduce sink, Shutdown action).
	t.Run("a panic after a Shutdown from elsewhere is reported", func(t *testing.T) {
		reduceErr, _, _ := shutdownDuringReduce(t)
		var pe *pipeline.PanicError
		assert.ErrorAs(t, reduceErr, &pe, "the panic in Reduce's fn must be reported")
	})

	// Regression: Shutdown returned nil while the Reduce sink still ran, then the sink panicked (issue 6, chaos run).
	// The same run: Shutdown used to return nil as soon as the stage goroutines
	// had ended, then the Reduce sink panicked and the pipeline's result became
	// that panic. A sink on the caller's goroutine now counts as running until it
	// returns, so Shutdown and Wait report its failure. Found by the chaos run
	// (PIPELINE_SOAK=20000, run 11108).
	t.Run("Shutdown and Wait report the sink's failure", func(t *testing.T) {
		reduceErr, shutdownErr, waitResult := shutdownDuringReduce(t)
		var pe *pipeline.PanicError
		require.ErrorAs(t, reduceErr, &pe)
		assert.Equal(t, reduceErr, shutdownErr, "Shutdown reports the pipeline's result")
		assert.Equal(t, reduceErr, waitResult)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Reduce nil fn", nil, func(p *pipeline.Pipeline) built {
				_, err := pipeline.Reduce[int, int](p, three(p), 0, nil)
				return sinkResult(err)
			}, []string{"reduce", "fn"}},
			{"Reduce nil in", nil, func(p *pipeline.Pipeline) built {
				_, err := pipeline.Reduce(p, nilInts, 0, func(a, v int) int { return a + v })
				return sinkResult(err)
			}, []string{"reduce", "input"}},
		})
	})
}

// TestFirst: the first item, then an early exit.
func TestFirst(t *testing.T) {
	t.Run("exits early without error or leak", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, counter(p, nil), 4, func(_ context.Context, v int) (int, error) {
			return v * 10, nil
		})
		var v int
		var ok bool
		var err error
		within(t, "First", func() { v, ok, err = pipeline.First(p, out) })
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Zero(t, v%10, "the item went through the FanOut")
		assert.NoError(t, p.Wait())
		requireDone(t, p)
	})

	t.Run("errors it causes upstream are not failures", func(t *testing.T) {
		p := pipeline.New(context.Background())
		// Item 0 goes through; every later call waits for the early exit and
		// then fails because of it.
		out := pipeline.FanOutOrdered(p, counter(p, nil), 4, func(ctx context.Context, v int) (int, error) {
			if v == 0 {
				return v, nil
			}
			<-ctx.Done()
			return 0, fmt.Errorf("item %d interrupted: %w", v, ctx.Err())
		})
		var v int
		var ok bool
		var err error
		within(t, "First", func() { v, ok, err = pipeline.First(p, out) })
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, 0, v)
		assert.NoError(t, p.Wait())
	})

	t.Run("on an empty input reports no item", func(t *testing.T) {
		p := pipeline.New(context.Background())
		v, ok, err := pipeline.First(p, pipeline.Generate[int](p))
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Zero(t, v)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"First nil in", nil, func(p *pipeline.Pipeline) built {
				_, _, err := pipeline.First(p, nilInts)
				return sinkResult(err)
			}, []string{"first", "input"}},
		})
	})
}

// TestDrain: every item read and discarded.
func TestDrain(t *testing.T) {
	t.Run("consumes every item", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var seen atomic.Int64
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(200)...), 4, func(_ context.Context, v int) (int, error) {
			seen.Add(1)
			return v, nil
		})
		require.NoError(t, pipeline.Drain(p, out))
		assert.Equal(t, int64(200), seen.Load())
		assert.Equal(t, uint64(200), p.Stats()[1].Out)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Drain nil in", nil, func(p *pipeline.Pipeline) built { return sinkResult(pipeline.Drain(p, nilInts)) },
				[]string{"drain", "input"}},
		})
	})
}

// TestAll: a range-over-func iterator as the sink.
func TestAll(t *testing.T) {
	t.Run("ranges over every item", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var got []int
		for v := range pipeline.All(p, pipeline.Generate(p, ints(100)...)) {
			got = append(got, v)
		}
		assert.Equal(t, ints(100), got)
		assert.NoError(t, p.Wait())
	})

	t.Run("break exits early without error or leak", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, counter(p, nil), 4, identity)
		var got []int
		within(t, "the range loop", func() {
			for v := range pipeline.All(p, out) {
				got = append(got, v)
				if len(got) == 5 {
					break
				}
			}
		})
		assert.Len(t, got, 5)
		assert.NoError(t, p.Wait())
		requireDone(t, p)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"All nil in", nil, func(p *pipeline.Pipeline) built {
				n := 0
				for range pipeline.All(p, nilInts) {
					n++
				}
				if n != 0 {
					return sinkResult(fmt.Errorf("All over a nil channel yielded %d items", n))
				}
				return sinkResult(p.Wait())
			}, []string{"all", "input"}},
		})
	})
}
