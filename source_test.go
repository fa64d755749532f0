package pipeline_test

// Tests of source.go: Generate, FromSeq, FromChan and Produce. Every
// source is also in the property, stop-loss and chaos suites.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestFromSeq: a source reading an iterator.
func TestFromSeq(t *testing.T) {
	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FromSeq nil seq", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FromSeq(p, nilSeq)) },
				[]string{"fromseq#1", "seq"}},
			{"FromSeq with OnError", nil, func(p *pipeline.Pipeline) built {
				return closedAtOnce(pipeline.FromSeq(p, slices.Values([]int{1}),
					pipeline.OnError(func(*pipeline.StageError) error { return nil })))
			}, []string{"fromseq#1", "OnError"}},
		})
	})
}

// TestFromChan: a source reading a channel made outside the pipeline.
func TestFromChan(t *testing.T) {
	// Regression: FromChan given one of the pipeline's own channels hung on Stop and lost items.
	t.Run("given one of the pipeline's own channels, Stop drains it and loses nothing", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var emitted atomic.Int64
		own := counter(p, &emitted)
		handled := 0
		var err error
		within(t, "ForEach", func() {
			err = pipeline.ForEach(p, pipeline.FromChan(p, own), 1, func(_ context.Context, v int) error {
				handled++
				if v == 100 {
					p.Stop()
				}
				return nil
			})
		})
		require.NoError(t, err)
		assert.Equal(t, int(emitted.Load()), handled)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"FromChan nil channel", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.FromChan(p, nilInts)) },
				[]string{"fromchan#1", "channel"}},
		})
	})

	// Regression: FromChan dropped a value it had taken from ch when Stop came before it was sent.
	// FromChan promises that on Stop "values still in ch are then left there, not
	// lost": a value it has taken from ch is delivered, not dropped. Here the
	// output is unbuffered, three values are read, Stop is called: every value is
	// delivered or still in ch.
	t.Run("Stop leaves untaken values in ch and delivers taken ones", func(t *testing.T) {
		ch := make(chan int, 10)
		for i := range 10 {
			ch <- i
		}
		p := pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
		out := pipeline.FromChan(p, ch)
		for want := range 3 {
			require.Equal(t, want, <-out)
		}
		p.Stop()
		rest, err := pipeline.Collect(p, out)
		require.NoError(t, err)

		var left []int
		for len(ch) > 0 {
			left = append(left, <-ch)
		}
		delivered := 3 + len(rest)
		assert.Equal(t, 10, delivered+len(left),
			"every value is either delivered or still in ch (delivered %d, rest %v, left in ch %v)", delivered, rest, left)
	})

	// Regression: FromChan lost the value in hand when emit refused it after Stop (issue 6).
	// FromChan takes a value from ch, then finds emit refusing it after Stop
	// (output full, or Stop seen first): the value is neither delivered nor left
	// in ch. FromChan's doc promises values not emitted stay in ch, "not lost".
	// Found by the Stop-loses-nothing tests; happens on every run below.
	t.Run("Stop loses no value in hand", func(t *testing.T) {
		const n = 100
		ch := make(chan int, n)
		for i := range n {
			ch <- i
		}
		close(ch)
		p := pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
		got := 0
		for range pipeline.All(p, pipeline.FromChan(p, ch)) {
			got++
			if got == 10 {
				p.Stop()
			}
		}
		require.NoError(t, p.Wait())
		assert.Equal(t, n, got+len(ch), "every value is delivered or still in ch (delivered %d, left %d)", got, len(ch))
	})
}

// TestProduce: a source driven by a function calling emit.
func TestProduce(t *testing.T) {
	// Regression: emit called after the Produce function returned panicked with "send on closed channel".
	t.Run("an emit after the function returned is refused with an error", func(t *testing.T) {
		p := pipeline.New(context.Background())
		late := make(chan error, 1)
		var sent atomic.Int64
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			go func() {
				for {
					if err := emit(1); err != nil {
						late <- err
						return
					}
					sent.Add(1)
				}
			}()
			return nil
		})
		got, _ := pipeline.Collect(p, src)
		err := <-late
		assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "emit called after the source function returned")
		assert.Equal(t, int(sent.Load()), len(got), "every emit that succeeded was delivered")
	})

	t.Run("emit returns ErrStopped after Stop", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var emitErr error
		emitted := 0
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			for i := 0; ; i++ {
				if err := emit(i); err != nil {
					emitErr = err
					return err
				}
				emitted++
			}
		})
		out := pipeline.FanOut(p, src, 1, func(_ context.Context, v int) (int, error) {
			if v == 10 {
				p.Stop()
			}
			return v, nil
		})
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err, "a source returning ErrStopped ended cleanly")
		assert.ErrorIs(t, emitErr, pipeline.ErrStopped)
		assert.Len(t, got, emitted)
	})

	t.Run("a wrapped ErrStopped is a clean end", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			if err := emit(1); err != nil {
				return err
			}
			return fmt.Errorf("producer done: %w", pipeline.ErrStopped)
		})
		got, err := pipeline.Collect(p, src)
		require.NoError(t, err)
		assert.Equal(t, []int{1}, got)
	})

	t.Run("fn's error fails the pipeline", func(t *testing.T) {
		boom := errors.New("source broke")
		p := pipeline.New(context.Background())
		src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			if err := emit(1); err != nil {
				return err
			}
			return boom
		})
		_, err := pipeline.Collect(p, pipeline.FanOut(p, src, 2, identity))
		var se *pipeline.StageError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "produce#1", se.Stage)
		assert.Nil(t, se.Item)
		assert.Equal(t, boom, se.Err)
		assert.ErrorIs(t, err, boom)
	})

	t.Run("ctx is done on Stop", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
			for i := range 3 {
				if err := emit(i); err != nil {
					return err
				}
			}
			<-ctx.Done() // a blocking call that gives up when ctx is done
			return ctx.Err()
		})
		for range 3 {
			await(t, src, "an item")
		}
		p.Stop()
		var rest []int
		var err error
		within(t, "Collect", func() { rest, err = pipeline.Collect(p, src) })
		require.NoError(t, err, "returning ctx's error after Stop is a clean end")
		assert.Empty(t, rest)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Produce nil fn", nil, func(p *pipeline.Pipeline) built { return closedAtOnce(pipeline.Produce(p, nilProduce)) },
				[]string{"produce#1", "fn"}},
		})
	})
}
