package pipeline_test

// Tests of stats.go: what Pipeline.Stats reports for each stage. The
// conservation of items through each stage is tested with the stage.

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestStats: stage names, kinds, workers, queues and busy calls.
func TestStats(t *testing.T) {
	// Regression: snapshots taken while items flowed showed Out+Dropped+Errors above In, and Busy above Workers.
	t.Run("every snapshot is consistent while items flow", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Generate(p, ints(20000)...)
		sq := pipeline.FanOut(p, src, 1, identity)
		ev := pipeline.Filter(p, sq, func(v int) bool { return v%2 == 0 })
		sk := pipeline.FanOut(p, ev, 3, func(_ context.Context, v int) (int, error) {
			if v%10 == 0 {
				return 0, errors.New("skip")
			}
			return v, nil
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		done := make(chan error, 1)
		go func() { done <- pipeline.Drain(p, sk) }()
		for ended := false; !ended; {
			select {
			case err := <-done:
				require.NoError(t, err)
				ended = true
			default:
			}
			for _, st := range p.Stats() {
				if st.Kind == "generate" {
					continue
				}
				assert.LessOrEqual(t, st.Out+st.Dropped+st.Errors, st.In, "%s", st.Name)
				assert.LessOrEqual(t, st.Busy, st.Workers, "%s", st.Name)
			}
		}
	})

	t.Run("an output no stage or sink reads is Unread; a channel two stages read is Shared", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Generate(p, ints(10)...)
		a := pipeline.FanOut(p, src, 1, identity, pipeline.Name("a"))
		b := pipeline.FanOut(p, src, 1, identity, pipeline.Name("b")) // src split between a and b
		dangling := pipeline.Filter(p, a, keepAll, pipeline.Name("dangling"))
		_ = dangling
		assert.Equal(t, 1, stageStats(t, p, "generate#1").Shared)
		assert.Equal(t, 1, stageStats(t, p, "a").Shared)
		assert.Equal(t, 1, stageStats(t, p, "b").Shared)
		assert.Equal(t, 1, stageStats(t, p, "dangling").Unread)
		assert.Equal(t, 1, stageStats(t, p, "b").Unread, "b's output is not read yet")
		assert.Zero(t, stageStats(t, p, "a").Unread)
		outs := pipeline.Tee(p, b, 2, pipeline.Name("tee"))
		assert.Zero(t, stageStats(t, p, "b").Unread)
		assert.Equal(t, 2, stageStats(t, p, "tee").Unread)
		p.Stop()
		var wg sync.WaitGroup
		for _, out := range []<-chan int{outs[1], dangling} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = pipeline.Drain(p, out)
			}()
		}
		_ = pipeline.Drain(p, outs[0])
		wg.Wait()
		assert.Zero(t, stageStats(t, p, "tee").Unread, "sinks count as readers")
		assert.Zero(t, stageStats(t, p, "dangling").Unread)
		require.NoError(t, p.Wait())
	})

	t.Run("an outside channel read by two stages is Shared on both", func(t *testing.T) {
		p := pipeline.New(context.Background())
		ch := make(chan int)
		close(ch)
		pipeline.FanOut(p, ch, 1, identity, pipeline.Name("x"))
		pipeline.Filter(p, ch, keepAll, pipeline.Name("y"))
		assert.Equal(t, 1, stageStats(t, p, "x").Shared)
		assert.Equal(t, 1, stageStats(t, p, "y").Shared)
		p.Stop()
		assert.NoError(t, p.Wait())
	})

	t.Run("names default to kind and index", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Generate(p, 1, 2, 3)
		sq := pipeline.FanOut(p, src, 3, identity)
		ev := pipeline.Filter(p, sq, func(int) bool { return true }, pipeline.Name("keep-all"))
		ord := pipeline.FanOutOrdered(p, ev, 2, identity)
		fm := pipeline.FlatMap(p, ord, 1, func(_ context.Context, v int, emit func(int) error) error { return emit(v) })
		require.NoError(t, pipeline.Drain(p, fm))

		stats := p.Stats()
		require.Len(t, stats, 5)
		want := []struct {
			name, kind string
			workers    int
		}{
			{"generate#1", "generate", 1},
			{"fanout#2", "fanout", 3},
			{"keep-all", "filter", 1},
			{"fanoutordered#4", "fanoutordered", 2},
			{"flatmap#5", "flatmap", 1},
		}
		for i, w := range want {
			assert.Equal(t, w.name, stats[i].Name, "stage %d", i+1)
			assert.Equal(t, w.kind, stats[i].Kind, "stage %d", i+1)
			assert.Equal(t, w.workers, stats[i].Workers, "stage %d", i+1)
		}
	})

	t.Run("QueueCap is the output buffer size", func(t *testing.T) {
		cases := []struct {
			name string
			opts []pipeline.Option
			so   []pipeline.StageOption
			want int
		}{
			{"default", nil, nil, pipeline.DefaultBufferSize},
			{"DefaultBuffer", []pipeline.Option{pipeline.DefaultBuffer(3)}, nil, 3},
			{"BufferSize", nil, []pipeline.StageOption{pipeline.BufferSize(5)}, 5},
			{"BufferSize overrides DefaultBuffer", []pipeline.Option{pipeline.DefaultBuffer(3)},
				[]pipeline.StageOption{pipeline.BufferSize(7)}, 7},
			{"unbuffered", nil, []pipeline.StageOption{pipeline.BufferSize(0)}, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := pipeline.New(context.Background(), tc.opts...)
				out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, identity, tc.so...)
				require.NoError(t, pipeline.Drain(p, out))
				assert.Equal(t, tc.want, p.Stats()[1].QueueCap)
				assert.Equal(t, 0, p.Stats()[1].QueueLen)
			})
		}
	})

	t.Run("Busy counts running calls", func(t *testing.T) {
		const workers = 3
		p := pipeline.New(context.Background())
		gate := make(chan struct{})
		started := make(chan struct{}, 10)
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), workers, func(_ context.Context, v int) (int, error) {
			started <- struct{}{}
			<-gate
			return v, nil
		})
		for range workers {
			await(t, started, "a blocked call")
		}
		st := stageStats(t, p, "fanout#2")
		assert.Equal(t, workers, st.Busy, "every worker is blocked in a call")
		assert.Equal(t, workers, st.Workers)
		close(gate)
		require.NoError(t, pipeline.Drain(p, out))
		st = stageStats(t, p, "fanout#2")
		assert.Zero(t, st.Busy)
		assert.Equal(t, uint64(10), st.In)
		assert.Equal(t, uint64(10), st.Out)
	})

	// Regression: a stage whose function panicked reported Busy = 1 forever (issue 6).
	// A stage whose function panicked reports Busy = 1 forever: In was counted,
	// the call never was (engine.go, runWorkers/runOrdered count "called" only
	// after the step returns). Stats after Wait should show nothing running.
	t.Run("nothing is busy after Wait when a function panicked", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) {
			if v == 2 {
				panic("boom")
			}
			return v, nil
		})
		_, err := pipeline.Collect(p, out)
		require.Error(t, err)
		for _, s := range p.Stats() {
			assert.Zerof(t, s.Busy, "stage %s is busy after Wait", s.Name)
		}
	})
}
