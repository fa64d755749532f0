package pipeline_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

func TestOutputBuffer(t *testing.T) {
	t.Run("a stage with more workers than DefaultBufferSize has a slot per worker", func(t *testing.T) {
		p := pipeline.New(context.Background())
		narrow := pipeline.FanOut(p, pipeline.Generate(p, 1), 4, identity)
		wide := pipeline.FanOut(p, pipeline.Generate(p, 1), 100, identity)
		assert.Equal(t, pipeline.DefaultBufferSize, cap(narrow))
		assert.Equal(t, 100, cap(wide))
		require.NoError(t, pipeline.Drain(p, pipeline.Merge(p, narrow, wide)))
	})
	t.Run("BufferSize and DefaultBuffer are taken as they are", func(t *testing.T) {
		p := pipeline.New(context.Background(), pipeline.DefaultBuffer(8))
		a := pipeline.FanOut(p, pipeline.Generate(p, 1), 100, identity)
		b := pipeline.FanOut(p, pipeline.Generate(p, 1), 100, identity, pipeline.BufferSize(5))
		assert.Equal(t, 8, cap(a))
		assert.Equal(t, 5, cap(b))
		require.NoError(t, pipeline.Drain(p, pipeline.Merge(p, a, b)))
	})
	t.Run("the slot per worker stays within 64 KiB of items", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1000, func(_ context.Context, v int) ([1024]byte, error) {
			return [1024]byte{byte(v)}, nil
		})
		assert.Equal(t, pipeline.DefaultBufferSize, cap(out), "64 KiB of 1 KiB items is 64")
		require.NoError(t, pipeline.Drain(p, out))
	})
}

// gatedWide builds a source of n items read by a FanOut of workers workers
// whose calls wait for gate, and returns the FanOut's output.
func gatedWide(p *pipeline.Pipeline, src <-chan int, workers int, gate <-chan struct{}, started *atomic.Int64) <-chan int {
	return pipeline.FanOut(p, src, workers, func(ctx context.Context, v int) (int, error) {
		started.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return v, nil
	}, pipeline.Name("wide"))
}

// collectLater runs Collect on out in a goroutine and returns what waits
// for its result.
func collectLater(p *pipeline.Pipeline, out <-chan int) func() ([]int, error) {
	var got []int
	done := make(chan error, 1)
	go func() {
		var err error
		got, err = pipeline.Collect(p, out)
		done <- err
	}()
	return func() ([]int, error) {
		err := <-done
		return got, err
	}
}

// spilled builds Generate(n items) → gatedWide(workers), collected later,
// and waits until every worker holds an item and the source has run ahead
// by more than half its spill, more than its 64-slot channel alone could
// hold. (Once the spill is full the source waits until the workers have
// taken half of it; they took the channel's items first, so the channel
// may be empty, and the spill anywhere above half.)
func spilled(t *testing.T, n, workers int) (p *pipeline.Pipeline, gate chan struct{}, collected func() ([]int, error)) {
	t.Helper()
	p = pipeline.New(context.Background())
	gate = make(chan struct{})
	var started atomic.Int64
	collected = collectLater(p, gatedWide(p, pipeline.Generate(p, ints(n)...), workers, gate, &started))
	require.Eventually(t, func() bool {
		g := stageStats(t, p, "generate#1")
		return started.Load() == int64(workers) && g.QueueLen > workers/2 && g.Out == uint64(workers+g.QueueLen)
	}, hangBound, time.Millisecond)
	return p, gate, collected
}

func TestSpill(t *testing.T) {
	const n, workers = 2000, 200
	t.Run("a source read by a wider stage runs ahead by a slot per worker, and nothing is lost", func(t *testing.T) {
		p, gate, collected := spilled(t, n, workers)
		g := stageStats(t, p, "generate#1")
		assert.Equal(t, pipeline.DefaultBufferSize+workers, g.QueueCap)
		assert.LessOrEqual(t, g.QueueLen, g.QueueCap)
		time.Sleep(10 * time.Millisecond)
		assert.Equal(t, g.Out, stageStats(t, p, "generate#1").Out, "the source waits once its spill is full")
		close(gate)
		got, err := collected()
		require.NoError(t, err)
		assert.ElementsMatch(t, ints(n), got)
	})
	t.Run("an explicit buffer on the source gets no spill", func(t *testing.T) {
		p := pipeline.New(context.Background())
		gate := make(chan struct{})
		var started atomic.Int64
		src := pipeline.FromSeq(p, slices.Values(ints(n)), pipeline.BufferSize(0))
		out := gatedWide(p, src, workers, gate, &started)
		require.Eventually(t, func() bool { return started.Load() == workers }, hangBound, time.Millisecond)
		g := stageStats(t, p, "fromseq#1")
		assert.Zero(t, g.QueueCap)
		close(gate)
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Len(t, got, n)
	})
	t.Run("Stop drains the spill", func(t *testing.T) {
		p, gate, collected := spilled(t, n, workers)
		p.Stop()
		close(gate)
		got, err := collected()
		require.NoError(t, err)
		sent := stageStats(t, p, "generate#1").Out
		assert.Less(t, sent, uint64(n), "Stop ended the source early")
		assert.Len(t, got, int(sent), "every item the source sent was delivered")
		assert.Equal(t, ints(int(sent)), slices.Sorted(slices.Values(got)), "the first items sent, each once")
	})
	t.Run("cancelling a pipeline whose source has a spill ends it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline.New(ctx)
		gate := make(chan struct{})
		var started atomic.Int64
		out := gatedWide(p, pipeline.Generate(p, ints(n)...), workers, gate, &started)
		require.Eventually(t, func() bool { return started.Load() == workers }, hangBound, time.Millisecond)
		cancel()
		_, err := pipeline.Collect(p, out)
		assert.ErrorIs(t, err, context.Canceled)
	})
}
