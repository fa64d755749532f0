package pipeline_test

import (
	"context"
	"iter"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Bad input: every exported function given nil or out-of-range arguments
// returns an error wrapping ErrInvalidArgument (naming what was wrong) or does
// what its documentation says, and never panics or hangs: each case runs
// under guard, which fails on a panic, a hang or a goroutine left behind.

// badStage builds one stage with a bad argument on a fresh pipeline and
// checks that its output is closed at once; the case's error is then Wait's.
func badStage(build func(p *pipeline.Pipeline) <-chan int) func(t *testing.T) error {
	return func(t *testing.T) error {
		p := pipeline.New(context.Background())
		out := build(p)
		assert.True(t, closedNow(out), "the stage's output is closed at once")
		return p.Wait()
	}
}

// badCase: run returns the error the caller sees, which must wrap
// ErrInvalidArgument and mention every string of mention.
type badCase struct {
	name    string
	mention []string
	run     func(t *testing.T) error
}

func badCases() []badCase {
	in := func(p *pipeline.Pipeline) <-chan int { return pipeline.Generate(p, 1, 2, 3) }
	stage := badStage
	return []badCase{
		// New and its options.
		{"New/nil context", []string{"context"}, func(*testing.T) error {
			p := pipeline.New(nilCtx)
			_, err := pipeline.Collect(p, pipeline.Generate(p, 1))
			return err
		}},
		{"New/DefaultBuffer(-1)", []string{"DefaultBuffer"}, func(*testing.T) error {
			return pipeline.New(context.Background(), pipeline.DefaultBuffer(-1)).Wait()
		}},

		// A nil *Pipeline: sinks and Wait report it.
		{"nil Pipeline/Wait", []string{"Pipeline"}, func(*testing.T) error { return nilPipeline.Wait() }},
		{"nil Pipeline/Shutdown", []string{"Pipeline"}, func(*testing.T) error { return nilPipeline.Shutdown(context.Background()) }},
		{"nil Pipeline/Collect", []string{"Pipeline"}, func(*testing.T) error {
			_, err := pipeline.Collect(nilPipeline, make(chan int))
			return err
		}},
		{"nil Pipeline/ForEach", []string{"Pipeline"}, func(*testing.T) error {
			return pipeline.ForEach(nilPipeline, make(chan int), 1, doNothing)
		}},
		{"nil Pipeline/Reduce", []string{"Pipeline"}, func(*testing.T) error {
			_, err := pipeline.Reduce(nilPipeline, make(chan int), 0, func(a, v int) int { return a + v })
			return err
		}},
		{"nil Pipeline/First", []string{"Pipeline"}, func(*testing.T) error {
			_, _, err := pipeline.First(nilPipeline, make(chan int))
			return err
		}},
		{"nil Pipeline/Drain", []string{"Pipeline"}, func(*testing.T) error { return pipeline.Drain(nilPipeline, make(chan int)) }},

		// Sources.
		{"FromSeq/nil seq", []string{"fromseq", "seq"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FromSeq[int](p, nil) })},
		{"FromChan/nil channel", []string{"fromchan", "channel"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FromChan(p, nilInts) })},
		{"Produce/nil fn", []string{"produce", "fn"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Produce[int](p, nil) })},
		{"Produce/option it cannot honour", []string{"produce", "Timeout"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.Produce(p, func(context.Context, func(int) error) error { return nil }, pipeline.Timeout(time.Second))
		})},

		// Transforms: nil input, nil function, worker counts.
		{"FanOut/nil in", []string{"fanout", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOut(p, nilInts, 1, identity) })},
		{"FanOut/nil fn", []string{"fanout", "fn"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOut[int, int](p, in(p), 1, nil) })},
		{"FanOut/0 workers", []string{"fanout", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOut(p, in(p), 0, identity) })},
		{"FanOut/-1 workers", []string{"fanout", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOut(p, in(p), -1, identity) })},
		{"FanOut/math.MinInt workers", []string{"fanout", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOut(p, in(p), math.MinInt, identity) })},
		{"FanOutOrdered/nil in", []string{"fanoutordered", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOutOrdered(p, nilInts, 2, identity) })},
		{"FanOutOrdered/nil fn", []string{"fanoutordered", "fn"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOutOrdered[int, int](p, in(p), 2, nil) })},
		{"FanOutOrdered/0 workers", []string{"fanoutordered", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOutOrdered(p, in(p), 0, identity) })},
		{"FlatMap/nil in", []string{"flatmap", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FlatMap(p, nilInts, 1, emitAsIs) })},
		{"FlatMap/nil fn", []string{"flatmap", "fn"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FlatMap[int, int](p, in(p), 1, nil) })},
		{"FlatMap/-3 workers", []string{"flatmap", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FlatMap(p, in(p), -3, emitAsIs) })},
		{"Filter/nil in", []string{"filter", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Filter(p, nilInts, keepAll) })},
		{"Filter/nil keep", []string{"filter", "keep"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Filter(p, in(p), nil) })},
		{"Filter/option it cannot honour", []string{"filter", "Timeout"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.Filter(p, in(p), keepAll, pipeline.Timeout(time.Second))
		})},

		// Fan-in and splitting.
		{"Merge/nil input", []string{"merge", "input 1"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Merge(p, in(p), nilInts) })},
		{"Tee/nil in", []string{"tee", "input"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			outs := pipeline.Tee(p, nilInts, 3)
			require.Len(t, outs, 3, "n closed outputs")
			for _, o := range outs {
				assert.True(t, closedNow(o))
			}
			return p.Wait()
		}},
		{"Tee/0 outputs", []string{"tee", "n = 0"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.Empty(t, pipeline.Tee(p, in(p), 0), "no output when n < 1")
			return p.Wait()
		}},
		{"Tee/-2 outputs", []string{"tee", "n = -2"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.Empty(t, pipeline.Tee(p, in(p), -2))
			return p.Wait()
		}},
		{"Partition/nil in", []string{"partition", "input"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			outs := pipeline.Partition(p, nilInts, 2, routeToFirst)
			require.Len(t, outs, 2)
			for _, o := range outs {
				assert.True(t, closedNow(o))
			}
			return p.Wait()
		}},
		{"Partition/nil route", []string{"partition", "route"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			for _, o := range pipeline.Partition(p, in(p), 2, nil) {
				assert.True(t, closedNow(o))
			}
			return p.Wait()
		}},
		{"Partition/0 outputs", []string{"partition", "n = 0"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.Empty(t, pipeline.Partition(p, in(p), 0, routeToFirst))
			return p.Wait()
		}},
		{"Partition/math.MinInt outputs", []string{"partition", "n = "}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.Empty(t, pipeline.Partition(p, in(p), math.MinInt, routeToFirst))
			return p.Wait()
		}},

		// Flow control: sizes, intervals, bursts.
		{"Buffer/nil in", []string{"buffer", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Buffer(p, nilInts, 4) })},
		{"Buffer/0", []string{"buffer", "n must"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Buffer(p, in(p), 0) })},
		{"Buffer/-1", []string{"buffer", "n must"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Buffer(p, in(p), -1) })},
		{"DropOnFull/nil in", []string{"droponfull", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.DropOnFull(p, nilInts, 4) })},
		{"DropOnFull/0", []string{"droponfull", "n must"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.DropOnFull(p, in(p), 0) })},
		{"DropOnFull/math.MinInt", []string{"droponfull", "n must"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.DropOnFull(p, in(p), math.MinInt) })},
		{"Throttle/nil in", []string{"throttle", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Throttle(p, nilInts, time.Millisecond, 1) })},
		{"Throttle/every 0", []string{"throttle", "every"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Throttle(p, in(p), 0, 1) })},
		{"Throttle/every -1ns", []string{"throttle", "every"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Throttle(p, in(p), -1, 1) })},
		{"Throttle/burst 0", []string{"throttle", "burst"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Throttle(p, in(p), time.Millisecond, 0) })},
		{"Throttle/burst -5", []string{"throttle", "burst"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Throttle(p, in(p), time.Millisecond, -5) })},
		{"Batch/nil in", []string{"batch", "input"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.True(t, closedNow(pipeline.Batch(p, nilInts, 2, 0)))
			return p.Wait()
		}},
		{"Batch/size 0", []string{"batch", "size"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.True(t, closedNow(pipeline.Batch(p, in(p), 0, time.Millisecond)))
			return p.Wait()
		}},
		{"Batch/size -1", []string{"batch", "size"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.True(t, closedNow(pipeline.Batch(p, in(p), -1, 0)))
			return p.Wait()
		}},
		{"Unbatch/nil in", []string{"unbatch", "input"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Unbatch(p, nilSlices) })},

		// Sizes too large to allocate: more than 1<<20 workers or outputs, a
		// channel buffer over 1 GiB.
		{"FanOut/1<<20+1 workers", []string{"fanout", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FanOut(p, in(p), 1<<20+1, identity) })},
		{"FanOutOrdered/math.MaxInt workers", []string{"fanoutordered", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOutOrdered(p, in(p), math.MaxInt, identity)
		})},
		{"FlatMap/math.MaxInt workers", []string{"flatmap", "workers"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.FlatMap(p, in(p), math.MaxInt, emitAsIs) })},
		{"ForEach/math.MaxInt workers", []string{"foreach", "workers"}, func(*testing.T) error {
			p := pipeline.New(context.Background())
			return pipeline.ForEach(p, in(p), math.MaxInt, doNothing)
		}},
		{"Tee/math.MaxInt outputs", []string{"tee", "n = "}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			for _, o := range pipeline.Tee(p, in(p), math.MaxInt) {
				assert.True(t, closedNow(o))
			}
			return p.Wait()
		}},
		{"Partition/1<<20+1 outputs", []string{"partition", "n = "}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			for _, o := range pipeline.Partition(p, in(p), 1<<20+1, routeToFirst) {
				assert.True(t, closedNow(o))
			}
			return p.Wait()
		}},
		{"Buffer/math.MaxInt", []string{"buffer#", "MiB"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.Buffer(p, in(p), math.MaxInt) })},
		{"DropOnFull/2 GiB of ints", []string{"droponfull", "MiB"}, stage(func(p *pipeline.Pipeline) <-chan int { return pipeline.DropOnFull(p, in(p), 1<<28) })},
		{"BufferSize(math.MaxInt)", []string{"fanout", "MiB"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.BufferSize(math.MaxInt))
		})},
		{"DefaultBuffer(math.MaxInt)", []string{"generate", "MiB"}, func(t *testing.T) error {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(math.MaxInt))
			out := pipeline.Generate(p, 1)
			assert.True(t, closedNow(out))
			return p.Wait()
		}},

		// Stage options.
		{"BufferSize(-1)", []string{"BufferSize"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.BufferSize(-1))
		})},
		{"Timeout(0)", []string{"Timeout"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Timeout(0))
		})},
		{"Timeout(-1s)", []string{"Timeout"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Timeout(-time.Second))
		})},
		{"Retry(0)", []string{"Retry"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Retry(0, nil))
		})},
		{"Retry(-1)", []string{"Retry"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Retry(-1, nil))
		})},
		{"OnError(nil)", []string{"OnError"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.OnError(nil))
		})},
		{"Limit(nil)", []string{"Limit"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Limit(nil))
		})},
		{"Limit(NewLimiter(0))", []string{"Limit"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Limit(pipeline.NewLimiter(0)))
		})},
		{"Limit(NewLimiter(-4))", []string{"Limit"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FlatMap(p, in(p), 1, emitAsIs, pipeline.Limit(pipeline.NewLimiter(-4)))
		})},
		{"Limit(zero Limiter)", []string{"Limit"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Limit(&pipeline.Limiter{}))
		})},
		{"RetryIf(nil)", []string{"RetryIf"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.RetryIf(nil))
		})},
		{"RetryBudget(2, 1)", []string{"RetryBudget"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.RetryBudget(2, 1))
		})},
		{"StrictTimeout without Timeout", []string{"StrictTimeout"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOutOrdered(p, in(p), 1, identity, pipeline.StrictTimeout())
		})},
		{"Breaker(nil)", []string{"Breaker"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FlatMap(p, in(p), 1, emitAsIs, pipeline.Breaker(nil))
		})},
		{"Breaker(no window)", []string{"Breaker", "Window"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.Breaker(pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 1})))
		})},
		{"DeadLetters of another type", []string{"DeadLetters"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, in(p), 1, identity, pipeline.NewDeadLetters[string](p, 0).Option())
		})},
		{"NewDeadLetters(-1)", []string{"NewDeadLetters"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			assert.True(t, closedNow(pipeline.NewDeadLetters[int](p, -1).Out()))
			return p.Wait()
		}},
		{"RetryIf on a Filter", []string{"RetryIf", "filter"}, stage(func(p *pipeline.Pipeline) <-chan int {
			return pipeline.Filter(p, in(p), keepAll, pipeline.RetryIf(func(error) bool { return true }))
		})},

		// Weighted with missing parts: every call fails.
		{"Weighted/nil limiter", []string{"Weighted"}, badWeighted(nil, func(int) int { return 1 }, identity)},
		{"Weighted/nil weight", []string{"Weighted"}, badWeighted(pipeline.NewLimiter(2), nil, identity)},
		{"Weighted/nil fn", []string{"Weighted"}, badWeighted(pipeline.NewLimiter(2), func(int) int { return 1 }, nil)},
		{"Weighted/limiter of 0 slots", []string{"limiter"}, badWeighted(pipeline.NewLimiter(0), func(int) int { return 1 }, identity)},
		{"Weighted/weight beyond the limit", []string{"weight 3", "2 slots"}, badWeighted(pipeline.NewLimiter(2), func(int) int { return 3 }, identity)},

		// Sinks: nil input, nil function, worker counts.
		{"Collect/nil in", []string{"collect", "input"}, func(*testing.T) error {
			_, err := pipeline.Collect(pipeline.New(context.Background()), nilInts)
			return err
		}},
		{"ForEach/nil in", []string{"foreach", "input"}, func(*testing.T) error {
			return pipeline.ForEach(pipeline.New(context.Background()), nilInts, 1, doNothing)
		}},
		{"ForEach/nil fn", []string{"foreach", "fn"}, func(*testing.T) error {
			p := pipeline.New(context.Background())
			return pipeline.ForEach(p, in(p), 1, nil)
		}},
		{"ForEach/0 workers", []string{"foreach", "workers"}, func(*testing.T) error {
			p := pipeline.New(context.Background())
			return pipeline.ForEach(p, in(p), 0, doNothing)
		}},
		{"Reduce/nil in", []string{"reduce", "input"}, func(*testing.T) error {
			_, err := pipeline.Reduce(pipeline.New(context.Background()), nilInts, 0, func(a, v int) int { return a + v })
			return err
		}},
		{"Reduce/nil fn", []string{"reduce", "fn"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			acc, err := pipeline.Reduce[int, int](p, in(p), 7, nil)
			assert.Equal(t, 7, acc, "the initial accumulator comes back")
			return err
		}},
		{"First/nil in", []string{"first", "input"}, func(*testing.T) error {
			_, _, err := pipeline.First(pipeline.New(context.Background()), nilInts)
			return err
		}},
		{"Drain/nil in", []string{"drain", "input"}, func(*testing.T) error {
			return pipeline.Drain(pipeline.New(context.Background()), nilInts)
		}},
		{"All/nil in", []string{"all", "input"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			for v := range pipeline.All(p, nilInts) {
				t.Errorf("yielded %v", v)
			}
			return p.Wait()
		}},

		// A pipeline reused after Wait: stages built afterwards fail.
		{"Pipeline reused after Wait", []string{"after Wait"}, func(t *testing.T) error {
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, pipeline.Generate(p, 1, 2))
			require.NoError(t, err)
			require.Equal(t, []int{1, 2}, got)
			out := pipeline.Generate(p, 3)
			assert.True(t, closedNow(out), "the new stage's output is closed at once")
			_, err = pipeline.Collect(p, pipeline.FanOut(p, out, 1, identity))
			return err
		}},
	}
}

// badWeighted runs a FanOut whose function is Weighted(l, weight, fn)
// and returns the pipeline's error.
func badWeighted(l *pipeline.Limiter, weight func(int) int, fn func(context.Context, int) (int, error)) func(t *testing.T) error {
	return func(t *testing.T) error {
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2), 1, pipeline.Weighted(l, weight, fn)))
		assert.Empty(t, got)
		var se *pipeline.StageError
		assert.ErrorAs(t, err, &se, "the call fails, so the stage reports it")
		return err
	}
}

func TestBadInput_ReturnsErrInvalidArgument(t *testing.T) {
	for _, c := range badCases() {
		t.Run(c.name, func(t *testing.T) {
			guard(t, func() {
				err := c.run(t)
				require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
				for _, m := range c.mention {
					assert.Contains(t, err.Error(), m, "the message names what was wrong")
				}
			})
		})
	}
}

// Documented behaviour for nil and out-of-range arguments that are not
// errors.
func TestBadInput_DocumentedBehaviour(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"nil Pipeline/Context is Background", func(t *testing.T) {
			assert.Equal(t, context.Background(), nilPipeline.Context())
		}},
		{"nil Pipeline/Stop does nothing", func(*testing.T) { nilPipeline.Stop() }},
		{"nil Pipeline/Stats is nil", func(t *testing.T) { assert.Nil(t, nilPipeline.Stats()) }},
		{"nil Pipeline/Diagram is an empty flowchart", func(t *testing.T) {
			assert.Equal(t, "flowchart LR\n", nilPipeline.Diagram())
		}},
		{"nil Pipeline/Edges is nil", func(t *testing.T) { assert.Nil(t, nilPipeline.Edges()) }},
		{"nil Pipeline/stages return closed outputs", func(t *testing.T) {
			np := nilPipeline
			in := make(chan int) // never read: a stage on a nil pipeline starts nothing
			for name, out := range map[string]<-chan int{
				"Generate":      pipeline.Generate(np, 1),
				"FromSeq":       pipeline.FromSeq(np, func(func(int) bool) {}),
				"FromChan":      pipeline.FromChan(np, in),
				"Produce":       pipeline.Produce(np, func(context.Context, func(int) error) error { return nil }),
				"FanOut":        pipeline.FanOut(np, in, 1, identity),
				"FanOutOrdered": pipeline.FanOutOrdered(np, in, 1, identity),
				"FlatMap":       pipeline.FlatMap(np, in, 1, emitAsIs),
				"Filter":        pipeline.Filter(np, in, keepAll),
				"Merge":         pipeline.Merge(np, in),
				"Buffer":        pipeline.Buffer(np, in, 1),
				"DropOnFull":    pipeline.DropOnFull(np, in, 1),
				"Throttle":      pipeline.Throttle(np, in, time.Millisecond, 1),
				"Unbatch":       pipeline.Unbatch(np, make(chan []int)),
			} {
				assert.True(t, closedNow(out), name)
			}
			assert.True(t, closedNow(pipeline.Batch(np, in, 1, 0)), "Batch")
			for _, outs := range [][]<-chan int{pipeline.Tee(np, in, 2), pipeline.Partition(np, in, 2, routeToFirst)} {
				require.Len(t, outs, 2)
				for _, o := range outs {
					assert.True(t, closedNow(o))
				}
			}
			for v := range pipeline.All(np, in) {
				t.Errorf("All on a nil pipeline yielded %v", v)
			}
		}},
		{"New/nil options are ignored", func(t *testing.T) {
			p := pipeline.New(context.Background(), nil)
			got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 1, identity, nil, pipeline.Name("")))
			require.NoError(t, err)
			assert.ElementsMatch(t, []int{1, 2, 3}, got)
			assert.Equal(t, "fanout#2", p.Stats()[1].Name, "an empty Name keeps the default")
		}},
		{"DefaultBuffer(0) and BufferSize(0) are unbuffered", func(t *testing.T) {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
			got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 2, identity, pipeline.BufferSize(0)))
			require.NoError(t, err)
			assert.Len(t, got, 3)
			for _, s := range p.Stats() {
				assert.Zero(t, s.QueueCap, s.Name)
			}
		}},
		{"Merge/no inputs closes at once", func(t *testing.T) {
			p := pipeline.New(context.Background())
			assert.True(t, closedNow(pipeline.Merge[int](p)))
			assert.NoError(t, p.Wait())
		}},
		{"Batch/a huge size costs what the batch holds", func(t *testing.T) {
			for _, size := range []int{1 << 40, math.MaxInt} {
				p := pipeline.New(context.Background())
				got, err := pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, 1, 2), size, time.Millisecond))
				require.NoError(t, err, "size %d", size)
				assert.Equal(t, [][]int{{1, 2}}, got)
			}
		}},
		{"Batch/negative maxWait batches by size only", func(t *testing.T) {
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 2, -time.Hour))
			require.NoError(t, err)
			assert.Equal(t, [][]int{{1, 2}, {3, 4}, {5}}, got)
		}},
		{"Weighted/weights below one count as one", func(t *testing.T) {
			lim := pipeline.NewLimiter(1)
			p := pipeline.New(context.Background())
			fn := pipeline.Weighted(lim, func(v int) int { return -v }, identity)
			got, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 0, 1, math.MaxInt), 3, fn))
			require.NoError(t, err)
			assert.ElementsMatch(t, []int{0, 1, math.MaxInt}, got)
		}},
		{"Limiter/nil methods do nothing", func(t *testing.T) {
			var l *pipeline.Limiter
			l.SetLimit(3)
			assert.Zero(t, l.Limit())
			assert.Zero(t, l.InUse())
		}},
		{"Limiter/SetLimit below one is ignored", func(t *testing.T) {
			l := pipeline.NewLimiter(2)
			l.SetLimit(0)
			l.SetLimit(-7)
			l.SetLimit(math.MinInt)
			assert.Equal(t, 2, l.Limit())
		}},
		{"Limiter/NewLimiter(0) then SetLimit(2) is usable", func(t *testing.T) {
			l := pipeline.NewLimiter(0)
			l.SetLimit(2)
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 3, identity, pipeline.Limit(l)))
			require.NoError(t, err)
			assert.Len(t, got, 3)
		}},
		{"Limiter/shared by two pipelines, one cancelled", func(t *testing.T) {
			lim := pipeline.NewLimiter(1)
			ctxA, cancelA := context.WithCancelCause(context.Background())
			defer cancelA(nil)
			a := pipeline.New(ctxA)
			holding := make(chan struct{})
			outA := pipeline.FanOut(a, pipeline.Generate(a, 1), 1, func(ctx context.Context, v int) (int, error) {
				close(holding)
				<-ctx.Done() // holds the only slot until A is cancelled
				return v, ctx.Err()
			}, pipeline.Limit(lim))
			var wg sync.WaitGroup
			var errA error
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errA = pipeline.Collect(a, outA)
			}()
			<-holding
			b := pipeline.New(context.Background())
			outB := pipeline.FanOut(b, pipeline.Generate(b, 1, 2, 3), 2, identity, pipeline.Limit(lim))
			var gotB []int
			var errB error
			wg.Add(1)
			go func() {
				defer wg.Done()
				gotB, errB = pipeline.Collect(b, outB)
			}()
			cancelA(errCancel)
			wg.Wait()
			assert.ErrorIs(t, errA, errCancel)
			assert.NoError(t, errB, "B waits for the slot A held, then runs")
			assert.Len(t, gotB, 3)
			assert.Zero(t, lim.InUse(), "every slot is given back")
		}},
		{"Wait/repeated and concurrent calls agree", func(t *testing.T) {
			p := pipeline.New(context.Background())
			_ = pipeline.FanOut(p, three(p), 1, func(context.Context, int) (int, error) { return 0, errInjected })
			errs := make([]error, 8)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = p.Wait()
				}()
			}
			wg.Wait()
			for _, err := range errs {
				assert.ErrorIs(t, err, errInjected)
				assert.Equal(t, errs[0], err)
			}
		}},
		{"Pipeline reused after a failure keeps the first error", func(t *testing.T) {
			p := pipeline.New(context.Background())
			err := pipeline.Drain(p, pipeline.FanOut(p, three(p), 1, func(context.Context, int) (int, error) { return 0, errInjected }))
			require.ErrorIs(t, err, errInjected)
			assert.True(t, closedNow(pipeline.Generate(p, 1)))
			assert.ErrorIs(t, p.Wait(), errInjected, "the first failure wins")
		}},
		{"Stop/many times, before and after Wait", func(t *testing.T) {
			p := pipeline.New(context.Background())
			p.Stop()
			p.Stop()
			got, err := pipeline.Collect(p, three(p))
			require.NoError(t, err, "a source built after Stop ends cleanly")
			assert.Empty(t, got)
			p.Stop()
			assert.NoError(t, p.Wait())
		}},
		{"Shutdown/nil context", func(t *testing.T) {
			p := pipeline.New(context.Background())
			assert.ErrorIs(t, p.Shutdown(nilCtx), pipeline.ErrInvalidArgument)
			assert.NoError(t, pipeline.Drain(p, three(p)), "the pipeline is untouched")
		}},
		{"Shutdown/after Wait returns Wait's result", func(t *testing.T) {
			p := pipeline.New(context.Background())
			require.NoError(t, pipeline.Drain(p, three(p)))
			assert.NoError(t, p.Shutdown(context.Background()))
		}},
		{"Throttle/huge interval ends on cancel", func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			p := pipeline.New(ctx)
			out := pipeline.Throttle(p, three(p), time.Duration(math.MaxInt64), 1)
			first, ok := <-out
			require.True(t, ok)
			assert.Equal(t, 1, first, "the burst lets the first item through")
			cancel(errCancel)
			assert.ErrorIs(t, pipeline.Drain(p, out), errCancel, "waiting for a token ends with the cancel")
		}},
		{"Retry/huge attempts end on cancel", func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			p := pipeline.New(ctx)
			var once sync.Once
			out := pipeline.FanOut(p, three(p), 1, func(context.Context, int) (int, error) {
				once.Do(func() { cancel(errCancel) })
				return 0, errInjected
			}, pipeline.Retry(math.MaxInt, func(int) time.Duration { return 0 }))
			assert.ErrorIs(t, pipeline.Drain(p, out), errCancel)
		}},
		{"Timeout/huge deadline is harmless", func(t *testing.T) {
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, pipeline.FanOut(p, three(p), 1, identity, pipeline.Timeout(time.Duration(math.MaxInt64))))
			require.NoError(t, err)
			assert.Len(t, got, 3)
		}},
		{"DefaultBackoff/any attempt number stays in [0, 5s)", func(t *testing.T) {
			for _, n := range []int{math.MinInt, -1, 0, 1, 2, 20, 21, 64, math.MaxInt} {
				d := pipeline.DefaultBackoff(n)
				assert.GreaterOrEqual(t, d, time.Duration(0), "attempt %d", n)
				assert.Less(t, d, 5*time.Second, "attempt %d", n)
			}
		}},
		{"PanicError/Unwrap of a non-error value is nil", func(t *testing.T) {
			assert.NoError(t, (&pipeline.PanicError{Value: "boom"}).Unwrap())
			assert.ErrorIs(t, &pipeline.PanicError{Value: errInjected}, errInjected)
			assert.ErrorIs(t, &pipeline.StageError{Stage: "x", Err: errInjected}, errInjected)
		}},
		{"FromSeq/a sequence that ignores yield's false still ends", func(t *testing.T) {
			p := pipeline.New(context.Background())
			var stubborn iter.Seq[int] = func(yield func(int) bool) {
				for i := range 1000 {
					yield(i) // ignores false: a misbehaving iterator
				}
			}
			v, ok, err := pipeline.First(p, pipeline.FromSeq(p, stubborn))
			assert.True(t, ok)
			assert.Equal(t, 0, v)
			assert.NoError(t, err, "First's early exit is not a failure, however the sequence behaves")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			guard(t, func() { c.run(t) })
		})
	}
}
