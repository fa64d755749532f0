package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// A channel made outside the pipeline can be the input of any stage or sink,
// which then reads it directly (no FromChan goroutine in between). These tests
// hold every one of them to what FromChan promises: cancellation ends it
// though the channel never closes, and Stop ends it cleanly without losing an
// item: each value is either delivered or still in the channel.

// foreignCase runs a pipeline whose input is ch and returns how many items
// reached its end (each input item counts factor times) once it has ended.
// Unbatch is covered through the Batch cases.
type foreignCase struct {
	name   string
	factor int
	run    func(p *pipeline.Pipeline, ch <-chan int) (int, error)
}

func foreignCount[T any](p *pipeline.Pipeline, outs ...<-chan T) (int, error) {
	var n atomic.Int64
	err := pipeline.ForEach(p, pipeline.Merge(p, outs...), 1, func(context.Context, T) error {
		n.Add(1)
		return nil
	})
	return int(n.Load()), err
}

func foreignCases() []foreignCase {
	id := identity
	keep := func(int) bool { return true }
	return []foreignCase{
		{"FanOut", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.FanOut(p, ch, 3, id))
		}},
		{"FanOutOrdered", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.FanOutOrdered(p, ch, 3, id))
		}},
		{"FlatMap", 2, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.FlatMap(p, ch, 2, func(_ context.Context, v int, emit func(int) error) error {
				if err := emit(v); err != nil {
					return err
				}
				return emit(v)
			}))
		}},
		{"Filter", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Filter(p, ch, keep))
		}},
		{"Merge", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Merge(p, ch))
		}},
		{"Tee", 2, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Tee(p, ch, 2)...)
		}},
		{"Partition", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Partition(p, ch, 3, func(v int) int { return v })...)
		}},
		{"Buffer", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Buffer(p, ch, 5))
		}},
		{"DropOnFull", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			n, err := foreignCount(p, pipeline.DropOnFull(p, ch, 1000))
			for _, s := range p.Stats() {
				if s.Name == "droponfull#1" {
					n += int(s.Dropped)
				}
			}
			return n, err
		}},
		{"Throttle", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Throttle(p, ch, time.Microsecond, 1000))
		}},
		{"Batch", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Unbatch(p, pipeline.Batch(p, ch, 7, 0)))
		}},
		{"Batch/maxWait", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return foreignCount(p, pipeline.Unbatch(p, pipeline.Batch(p, ch, 7, time.Millisecond)))
		}},
		{"ForEach", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			var n atomic.Int64
			err := pipeline.ForEach(p, ch, 2, func(context.Context, int) error { n.Add(1); return nil })
			return int(n.Load()), err
		}},
		{"Collect", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			got, err := pipeline.Collect(p, ch)
			return len(got), err
		}},
		{"Reduce", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return pipeline.Reduce(p, ch, 0, func(n, _ int) int { return n + 1 })
		}},
		// Drain counts nothing: factor 0 leaves the checks that it ends on
		// Stop and cancel, and that what Stop left stays in the channel.
		{"Drain", 0, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			return 0, pipeline.Drain(p, ch)
		}},
		{"All", 1, func(p *pipeline.Pipeline, ch <-chan int) (int, error) {
			n := 0
			for range pipeline.All(p, ch) {
				n++
			}
			return n, p.Wait()
		}},
	}
}

func TestForeignInput_StopLosesNothingAndTakesNothingMore(t *testing.T) {
	const before, after = 40, 5
	for _, c := range foreignCases() {
		t.Run(c.name, func(t *testing.T) {
			ch := make(chan int, before+after)
			for i := range before {
				ch <- i
			}
			p := pipeline.New(context.Background())
			type result struct {
				n   int
				err error
			}
			res := make(chan result, 1)
			go func() {
				n, err := c.run(p, ch)
				res <- result{n, err}
			}()
			require.Eventually(t, func() bool { return len(ch) == 0 }, hangBound, time.Millisecond,
				"the stage never took the channel's items")
			p.Stop()
			for i := range after {
				ch <- before + i
			}
			var r result
			within(t, "the pipeline after Stop", func() { r = <-res })
			require.NoError(t, r.err)
			// Every value was delivered or is still in the channel; a value
			// sent after Stop is taken only by a read already under way.
			assert.Equal(t, (before+after-len(ch))*c.factor, r.n)
			assert.GreaterOrEqual(t, len(ch), after-3, "values sent after Stop were taken")
		})
	}
}

func TestForeignInput_CancelEndsItThoughTheChannelNeverCloses(t *testing.T) {
	cause := errors.New("foreign: cancelled")
	for _, c := range foreignCases() {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			ch := make(chan int, 1) // never closed
			ch <- 1
			p := pipeline.New(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := c.run(p, ch)
				done <- err
			}()
			require.Eventually(t, func() bool { return len(ch) == 0 }, hangBound, time.Millisecond)
			cancel(cause)
			var err error
			within(t, "the pipeline after cancel", func() { err = <-done })
			assert.Equal(t, cause, err)
		})
	}
}

func TestForeignInput_IsReadWithoutAHiddenStage(t *testing.T) {
	ch := make(chan int, 3)
	ch <- 1
	ch <- 2
	ch <- 3
	close(ch)
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.FanOut(p, ch, 2, identity))
	require.NoError(t, err)
	assert.ElementsMatch(t, []int{1, 2, 3}, got)
	st := p.Stats()
	require.Len(t, st, 1, "a foreign channel must not add a stage")
	assert.Equal(t, "fanout#1", st[0].Name)
	assert.Equal(t, uint64(3), st[0].In)
}

func TestForeignInput_FirstTakesOneValueAndLeavesTheRest(t *testing.T) {
	ch := make(chan int, 3)
	ch <- 7
	ch <- 8
	ch <- 9
	p := pipeline.New(context.Background())
	v, ok, err := pipeline.First(p, ch)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 7, v)
	assert.Equal(t, 2, len(ch), "First took more than one value")
}

func TestForeignInput_IsAdoptedByMergeAndFanOut(t *testing.T) {
	stages := map[string]func(p *pipeline.Pipeline, outside <-chan int) <-chan int{
		"Merge": func(p *pipeline.Pipeline, outside <-chan int) <-chan int {
			return pipeline.Merge(p, outside, pipeline.Generate(p, ints(100)[50:]...))
		},
		"FanOut": func(p *pipeline.Pipeline, outside <-chan int) <-chan int {
			return pipeline.FanOut(p, outside, 3, identity)
		},
	}
	for name, build := range stages {
		t.Run(name, func(t *testing.T) {
			outside := make(chan int)
			go func() {
				defer close(outside)
				for i := range 50 {
					outside <- i
				}
			}()
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, build(p, outside))
			require.NoError(t, err)
			slices.Sort(got)
			want := ints(50)
			if name == "Merge" {
				want = ints(100)
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestForeignInput_CancelStillEndsMergeAndFanOut(t *testing.T) {
	stages := map[string]func(p *pipeline.Pipeline, outside <-chan int) <-chan int{
		"Merge": func(p *pipeline.Pipeline, outside <-chan int) <-chan int { return pipeline.Merge(p, outside) },
		"FanOut": func(p *pipeline.Pipeline, outside <-chan int) <-chan int {
			return pipeline.FanOut(p, outside, 3, identity)
		},
	}
	for name, build := range stages {
		t.Run(name, func(t *testing.T) {
			cause := errors.New("core: cancelled")
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			p := pipeline.New(ctx)
			outside := make(chan int, 1) // never closed
			outside <- 1
			out := build(p, outside)
			got := <-out // the stage works...
			assert.Equal(t, 1, got)
			cancel(cause) // ...and cancel ends it though its input never closes
			var err error
			within(t, "Drain", func() { err = pipeline.Drain(p, out) })
			assert.Equal(t, cause, err)
		})
	}
}
