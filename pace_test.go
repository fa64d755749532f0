package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// busySource is a Produce source that works (spins) every between its
// emits, n items, given opts.
func busySource(p *pipeline.Pipeline, n int, every time.Duration, opts ...pipeline.StageOption) <-chan int {
	return pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := range n {
			for start := time.Now(); time.Since(start) < every; {
			}
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, append([]pipeline.StageOption{pipeline.Name("src")}, opts...)...)
}

// gatedMap is a one-worker map named "map" whose first call waits until
// open is closed; entered is closed once it waits.
func gatedMap(p *pipeline.Pipeline, in <-chan int, entered, open chan struct{}) <-chan int {
	var first atomic.Bool
	return pipeline.FanOut(p, in, 1, func(_ context.Context, v int) (int, error) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-open
		}
		return v, nil
	}, pipeline.Name("map"))
}

func TestPacing(t *testing.T) {
	const items = 200
	t.Run("a busy source does not run ahead of a stage that holds its item", func(t *testing.T) {
		p := pipeline.New(context.Background())
		entered, open := make(chan struct{}), make(chan struct{})
		mapped := gatedMap(p, busySource(p, items, 20*time.Microsecond), entered, open)
		var got atomic.Int64
		done := make(chan error, 1)
		go func() {
			done <- pipeline.ForEach(p, mapped, 1, func(context.Context, int) error { got.Add(1); return nil })
		}()
		<-entered
		time.Sleep(10 * time.Millisecond)
		// Unpaced, it would have filled the map's input (64) in about 1.3 ms.
		// Paced, each emit waits for a take, or 1 ms at most.
		st := stageStats(t, p, "src")
		assert.LessOrEqual(t, st.Out, uint64(32), "the source sent %d items while its reader held its first", st.Out)
		assert.GreaterOrEqual(t, st.SendWait, 2*time.Millisecond, "holding back counts as SendWait")
		close(open)
		require.NoError(t, <-done)
		assert.Equal(t, int64(items), got.Load(), "every item arrives")
	})
	t.Run("a source given BufferSize runs ahead by its buffer", func(t *testing.T) {
		p := pipeline.New(context.Background())
		entered, open := make(chan struct{}), make(chan struct{})
		mapped := gatedMap(p, busySource(p, items, 20*time.Microsecond, pipeline.BufferSize(64)), entered, open)
		done := make(chan error, 1)
		go func() { done <- pipeline.Drain(p, mapped) }()
		<-entered
		require.Eventually(t, func() bool { return stageStats(t, p, "src").Out >= 65 }, hangBound, time.Millisecond,
			"the source fills its buffer behind the held item")
		close(open)
		require.NoError(t, <-done)
		assert.Equal(t, uint64(items), stageStats(t, p, "map").Out)
	})
	t.Run("a source that mostly waits for slower stages stops holding back", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := busySource(p, items, 20*time.Microsecond)
		slow := pipeline.FanOut(p, src, 1, func(_ context.Context, v int) (int, error) {
			time.Sleep(500 * time.Microsecond)
			return v, nil
		}, pipeline.Name("map"))
		done := make(chan error, 1)
		go func() { done <- pipeline.Drain(p, slow) }()
		// Held back, it would stay within an item or two of the map. Once
		// it has spent most of a window waiting, it runs ahead by its
		// buffer.
		require.Eventually(t, func() bool {
			return stageStats(t, p, "src").Out >= stageStats(t, p, "map").In+32
		}, hangBound, time.Millisecond, "the source runs ahead of the slow map")
		p.Stop()
		require.NoError(t, <-done)
		src1, map1 := stageStats(t, p, "src"), stageStats(t, p, "map")
		assert.Equal(t, src1.Out, map1.Out, "Stop delivers every item sent")
	})
	t.Run("cancel ends a source holding back", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline.New(ctx)
		entered, open := make(chan struct{}), make(chan struct{})
		mapped := gatedMap(p, busySource(p, items, 20*time.Microsecond), entered, open)
		done := make(chan error, 1)
		go func() { done <- pipeline.Drain(p, mapped) }()
		<-entered
		cancel()
		close(open)
		require.ErrorIs(t, <-done, context.Canceled)
	})
}
