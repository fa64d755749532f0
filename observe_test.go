package pipeline_test

// Tests of observe.go and observer.go: where the time of a pipeline goes
// (blocked time, utilization, the bottleneck), TimedDiagram, and the
// observers WithObserver attaches.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

func sleepFor(d time.Duration) func(context.Context, int) (int, error) {
	return func(_ context.Context, v int) (int, error) {
		time.Sleep(d)
		return v, nil
	}
}

// slowMiddle runs fast source → fast stage → slow stage → fast stage.
func slowMiddle(t *testing.T, opts ...pipeline.Option) *pipeline.Pipeline {
	p := pipeline.New(context.Background(), append([]pipeline.Option{pipeline.DefaultBuffer(2)}, opts...)...)
	src := pipeline.Generate(p, ints(60)...)
	a := pipeline.FanOut(p, src, 1, identity, pipeline.Name("fast"))
	b := pipeline.FanOut(p, a, 1, sleepFor(2*time.Millisecond), pipeline.Name("slow"))
	c := pipeline.FanOut(p, b, 1, identity, pipeline.Name("after"))
	require.NoError(t, pipeline.Drain(p, c))
	return p
}

// TestObserve: blocked time, the bottleneck verdict, observers.
func TestObserve(t *testing.T) {
	t.Run("the slow stage is the bottleneck; its neighbours wait for it", func(t *testing.T) {
		p := slowMiddle(t)
		stats := p.Stats()
		var marked []string
		for _, st := range stats {
			assert.Positive(t, st.Running, st.Name)
			if st.Bottleneck {
				marked = append(marked, st.Name)
			}
		}
		assert.Equal(t, []string{"slow"}, marked)
		slow, fast, after := stageStats(t, p, "slow"), stageStats(t, p, "fast"), stageStats(t, p, "after")
		assert.Greater(t, slow.Utilization, 0.5)
		assert.Less(t, fast.Utilization, 0.5)
		assert.Less(t, after.Utilization, 0.5)
		assert.Greater(t, fast.SendWait, 50*time.Millisecond, "upstream blocks sending to the slow stage")
		assert.Greater(t, after.RecvWait, 50*time.Millisecond, "downstream waits for its items")
		assert.GreaterOrEqual(t, slow.Latency.Quantile(0.5), 2*time.Millisecond*7/8)
		assert.Less(t, fast.Latency.Quantile(0.99), slow.Latency.Quantile(0.5))
		assert.Nil(t, stats[0].Latency, "a source calls no function")
	})
	t.Run("nothing is a bottleneck when every stage waits", func(t *testing.T) {
		p := pipeline.New(context.Background())
		gate := make(chan int)
		out := pipeline.FanOut(p, pipeline.FromChan(p, gate), 2, identity, pipeline.Name("f"))
		go func() {
			for i := range 5 {
				time.Sleep(10 * time.Millisecond)
				gate <- i
			}
			close(gate)
		}()
		require.NoError(t, pipeline.Drain(p, out))
		f := stageStats(t, p, "f")
		assert.Less(t, f.Utilization, 0.5)
		assert.False(t, f.Bottleneck)
		assert.Greater(t, f.RecvWait, 50*time.Millisecond)
	})
	t.Run("a Batch waiting for a slow upstream counts its wait", func(t *testing.T) {
		p := pipeline.New(context.Background())
		slow := pipeline.FanOut(p, pipeline.Generate(p, ints(30)...), 1, sleepFor(2*time.Millisecond), pipeline.Name("slow"))
		batches := pipeline.Batch(p, slow, 4, time.Hour, pipeline.Name("batch"))
		require.NoError(t, pipeline.Drain(p, batches))
		b := stageStats(t, p, "batch")
		assert.Greater(t, b.RecvWait, 30*time.Millisecond, "it waits for the slow stage's items")
		assert.Less(t, b.Utilization, 0.5)
		assert.False(t, b.Bottleneck)
		assert.True(t, stageStats(t, p, "slow").Bottleneck)
	})
	t.Run("TimedDiagram marks the bottleneck and shows latency", func(t *testing.T) {
		p := slowMiddle(t)
		d := p.TimedDiagram()
		assert.Equal(t, 1, strings.Count(d, "bottleneck"), d)
		slowLine := ""
		for _, l := range strings.Split(d, "\n") {
			if strings.Contains(l, "<b>slow</b>") {
				slowLine = l
			}
		}
		assert.Contains(t, slowLine, "bottleneck")
		assert.Contains(t, slowLine, "p99 ")
		assert.NotContains(t, p.Diagram(), "bottleneck", "Diagram stays as it was")
	})
	t.Run("an observer hears every stage start and end, then the pipeline end", func(t *testing.T) {
		rec := &recorder{every: 1}
		p := pipeline.New(context.Background(), pipeline.WithObserver(rec), pipeline.WithObserver(nil))
		src := pipeline.Generate(p, ints(40)...)
		out := pipeline.FanOut(p, src, 3, func(_ context.Context, v int) (int, error) {
			if v%10 == 0 {
				return 0, errors.New("tens")
			}
			return v, nil
		}, pipeline.Name("f"), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		require.NoError(t, pipeline.Drain(p, out))
		rec.mu.Lock()
		defer rec.mu.Unlock()
		assert.ElementsMatch(t, []string{"start generate#1", "start f", "end generate#1 out=40", "end f out=36", "pipeline <nil> 2"}, rec.events)
		assert.Equal(t, "pipeline <nil> 2", rec.events[len(rec.events)-1], "the pipeline ends last")
		assert.Len(t, rec.calls, 40, "every call, as CallEvery asks")
		failed := 0
		for _, c := range rec.calls {
			assert.Equal(t, "f", c.Stage.Name)
			assert.Equal(t, 3, c.Stage.Workers)
			assert.False(t, c.Start.IsZero())
			if c.Err != nil {
				failed++
				assert.Zero(t, c.Item.(int)%10)
			}
		}
		assert.Equal(t, 4, failed)
	})
	t.Run("a call observer hears one call in CallEvery per worker", func(t *testing.T) {
		rec := &recorder{every: 5}
		p := pipeline.New(context.Background(), pipeline.WithObserver(rec))
		err := pipeline.ForEach(p, pipeline.Generate(p, ints(50)...), 1, doNothing)
		require.NoError(t, err)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Len(t, rec.calls, 10)
		assert.Equal(t, 0, rec.calls[0].Item)
		assert.Equal(t, 5, rec.calls[1].Item)
		// histogram: calls 0, 16, 32, 48; observer: 0, 5, …, 45; 0 in both
		assert.Equal(t, uint64(13), stageStats(t, p, "foreach#2").Latency.Count(),
			"the histogram has its own samples and the observer's")
	})
	t.Run("a failing pipeline's result reaches the observer", func(t *testing.T) {
		rec := &recorder{}
		p := pipeline.New(context.Background(), pipeline.WithObserver(rec))
		boom := errors.New("boom")
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) { return 0, boom })
		require.ErrorIs(t, pipeline.Drain(p, out), boom)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.NotEmpty(t, rec.events)
		assert.Contains(t, rec.events[len(rec.events)-1], "boom")
		assert.Empty(t, rec.calls, "CallEvery 0 hears no call")
	})
}

// recorder is an Observer and CallObserver that records what it hears.
type recorder struct {
	every  int
	mu     sync.Mutex
	events []string
	calls  []pipeline.CallInfo
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) StageStarted(s pipeline.StageInfo) { r.add("start " + s.Name) }

func (r *recorder) StageEnded(s pipeline.StageInfo, st pipeline.StageStats) {
	r.add("end " + s.Name + " out=" + strconv.Itoa(int(st.Out)))
}

func (r *recorder) PipelineEnded(err error, stats []pipeline.StageStats) {
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	r.add("pipeline " + msg + " " + strconv.Itoa(len(stats)))
}

func (r *recorder) CallEvery() int { return r.every }

func (r *recorder) Call(c pipeline.CallInfo) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}
