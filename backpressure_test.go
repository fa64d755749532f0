package pipeline_test

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

// flowInts returns 1..n.
func flowInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// flowCase is one flow-control stage under test, built on an int input.
// stage names the stage whose counters the case checks; lossy is set for a
// stage that may drop items on purpose.
type flowCase struct {
	name  string
	stage string
	lossy bool
	build func(p *pipeline.Pipeline, in <-chan int) <-chan int
}

// flowCases are the stages of issue 3, each in a typical configuration.
func flowCases() []flowCase {
	return []flowCase{
		{name: "Buffer", stage: "buffer#2", build: func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Buffer(p, in, 4)
		}},
		{name: "DropOnFull", stage: "droponfull#2", lossy: true, build: func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.DropOnFull(p, in, 4)
		}},
		{name: "Throttle", stage: "throttle#2", build: func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Throttle(p, in, 50*time.Microsecond, 8)
		}},
		{name: "BatchBySize", stage: "batch#2", build: func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Unbatch(p, pipeline.Batch(p, in, 7, 0))
		}},
		{name: "BatchByTime", stage: "batch#2", build: func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Unbatch(p, pipeline.Batch(p, in, 7, time.Millisecond))
		}},
	}
}

func TestFlowStages_CancelEndsPromptlyWhenNobodyReads(t *testing.T) {
	for _, tc := range flowCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := pipeline.New(ctx)
			out := tc.build(p, counter(p, nil))
			require.NotNil(t, out)
			require.Eventually(t, func() bool { return stageStats(t, p, tc.stage).In > 0 },
				hangBound, time.Millisecond, "the stage never took an item")

			cancel()
			err := waitErr(t, p)
			assert.ErrorIs(t, err, context.Canceled)
			for range out { // closed, and whatever is left in it is finite
			}
		})
	}
}

func TestFlowStages_StopDeliversEveryEmittedItem(t *testing.T) {
	for _, tc := range flowCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			out := tc.build(p, counter(p, nil))
			var got []int
			for v := range pipeline.All(p, out) {
				got = append(got, v)
				if len(got) == 50 {
					p.Stop()
				}
			}
			require.NoError(t, p.Wait())

			emitted := p.Stats()[0].Out
			st := stageStats(t, p, tc.stage)
			assert.Equal(t, emitted, st.In, "the stage took every emitted item")
			assert.Equal(t, st.In, st.Out+st.Dropped+st.Errors, "conservation")
			assert.Equal(t, st.Out, uint64(len(got)), "the sink got every item sent on")
			if !tc.lossy {
				assert.Zero(t, st.Dropped)
				assert.Equal(t, emitted, uint64(len(got)), "Stop lost nothing")
			}
			if tc.name != "FanOutWithLimit" && tc.name != "FanOutWithTimeout" && tc.name != "FanOutWithRetry" {
				assert.True(t, sort.IntsAreSorted(got), "one-goroutine stages keep order")
			}
		})
	}
}

func TestFlowStages_RejectInvalidArguments(t *testing.T) {
	cases := []struct {
		name  string
		build func(p *pipeline.Pipeline, in <-chan int) <-chan int
		want  []string // the message names the stage and the argument
	}{
		{"Buffer n=0", func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Buffer(p, in, 0) },
			[]string{"buffer#2", "n must be >= 1"}},
		{"Buffer n<0", func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Buffer(p, in, -3) },
			[]string{"buffer#2", "n must be >= 1"}},
		{"Buffer nil input", func(p *pipeline.Pipeline, _ <-chan int) <-chan int { return pipeline.Buffer[int](p, nil, 3) },
			[]string{"buffer#2", "input"}},
		{"DropOnFull n=0", func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.DropOnFull(p, in, 0) },
			[]string{"droponfull#2", "n must be >= 1"}},
		{"DropOnFull nil input", func(p *pipeline.Pipeline, _ <-chan int) <-chan int { return pipeline.DropOnFull[int](p, nil, 3) },
			[]string{"droponfull#2", "input"}},
		{"Throttle every=0", func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Throttle(p, in, 0, 1) },
			[]string{"throttle#2", "every"}},
		{"Throttle every<0", func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Throttle(p, in, -time.Second, 1) },
			[]string{"throttle#2", "every"}},
		{"Throttle burst=0", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Throttle(p, in, time.Millisecond, 0)
		}, []string{"throttle#2", "burst"}},
		{"Throttle nil input", func(p *pipeline.Pipeline, _ <-chan int) <-chan int {
			return pipeline.Throttle[int](p, nil, time.Millisecond, 1)
		}, []string{"throttle#2", "input"}},
		{"Batch size=0", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Unbatch(p, pipeline.Batch(p, in, 0, time.Second))
		}, []string{"batch#2", "size"}},
		{"Batch size<0", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Unbatch(p, pipeline.Batch(p, in, -1, 0))
		}, []string{"batch#2", "size"}},
		{"Batch nil input", func(p *pipeline.Pipeline, _ <-chan int) <-chan int {
			return pipeline.Unbatch(p, pipeline.Batch[int](p, nil, 3, 0))
		}, []string{"batch#2", "input"}},
		{"Unbatch nil input", func(p *pipeline.Pipeline, _ <-chan int) <-chan int { return pipeline.Unbatch[int](p, nil) },
			[]string{"unbatch#2", "input"}},
		{"Timeout on a Throttle", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Throttle(p, in, time.Millisecond, 1, pipeline.Timeout(time.Second))
		}, []string{"throttle#2", "Timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			out := tc.build(p, pipeline.Generate(p, 1, 2, 3))
			require.NotNil(t, out, "the stage reported no error")
			for range out { // closed at once: this loop ends
			}
			err := waitErr(t, p)
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestBuffer_PassesEveryItemInOrder(t *testing.T) {
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.Buffer(p, pipeline.Generate(p, flowInts(100)...), 5))
	require.NoError(t, err)
	assert.Equal(t, flowInts(100), got)

	st := p.Stats()[1]
	assert.Equal(t, "buffer", st.Kind)
	assert.Equal(t, uint64(100), st.In)
	assert.Equal(t, uint64(100), st.Out)
	assert.Equal(t, 5, st.QueueCap)
}

func TestBuffer_LetsUpstreamRunNItemsAheadOfABlockedDownstream(t *testing.T) {
	for _, n := range []int{1, 4, 10} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			p := pipeline.New(context.Background())
			var emitted atomic.Int64
			src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
				for i := 1; i <= 100; i++ {
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

			// The gated worker holds item 1, the buffer queues n items and
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
			assert.Equal(t, flowInts(100), got)
		})
	}
}

func TestDropOnFull_NeverBlocksUpstreamAndKeepsTheFirstNItems(t *testing.T) {
	p := pipeline.New(context.Background())
	out := pipeline.DropOnFull(p, pipeline.Generate(p, flowInts(1000)...), 4)

	// Nobody reads out, yet the stage takes every item.
	require.Eventually(t, func() bool { return stageStats(t, p, "droponfull#2").In == 1000 },
		hangBound, time.Millisecond, "DropOnFull blocked its upstream")
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err, "dropping is not a failure")
	assert.Equal(t, []int{1, 2, 3, 4}, got)

	st := stageStats(t, p, "droponfull#2")
	assert.Equal(t, uint64(1000), st.In)
	assert.Equal(t, uint64(4), st.Out)
	assert.Equal(t, uint64(996), st.Dropped)
	assert.Equal(t, 4, st.QueueCap)
}

func TestDropOnFull_ConservesItemsUnderASlowConsumer(t *testing.T) {
	const items = 20000
	p := pipeline.New(context.Background())
	out := pipeline.DropOnFull(p, pipeline.Generate(p, flowInts(items)...), 8)
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
	assert.Equal(t, 1, got[0])
}

func TestThrottle_BurstOneLetsOneItemThroughPerInterval(t *testing.T) {
	const every = 20 * time.Millisecond
	p := pipeline.New(context.Background())
	start := time.Now()
	got, err := pipeline.Collect(p, pipeline.Throttle(p, pipeline.Generate(p, flowInts(10)...), every, 1))
	elapsed := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, flowInts(10), got)
	// The first item goes at once, each of the other nine waits one interval.
	assert.GreaterOrEqual(t, elapsed, 170*time.Millisecond)
}

func TestThrottle_BurstLetsTheFirstItemsThroughTogether(t *testing.T) {
	const every = 300 * time.Millisecond
	p := pipeline.New(context.Background())
	start := time.Now()
	var at []time.Duration
	for range pipeline.All(p, pipeline.Throttle(p, pipeline.Generate(p, flowInts(7)...), every, 5)) {
		at = append(at, time.Since(start))
	}
	require.NoError(t, p.Wait())
	require.Len(t, at, 7)
	assert.Less(t, at[4], every/2, "the first five came as a burst: %v", at)
	assert.GreaterOrEqual(t, at[5], every*8/10, "the sixth waited for a token: %v", at)
	assert.GreaterOrEqual(t, at[6]-at[4], every*18/10, "then one per interval: %v", at)
}

func TestThrottle_CancelWhileWaitingForATokenEndsPromptly(t *testing.T) {
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
}

func TestThrottle_LeavesNoGoroutineBehind(t *testing.T) {
	for _, cancelEarly := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline.New(ctx)
		out := pipeline.Throttle(p, pipeline.Generate(p, flowInts(5)...), 10*time.Millisecond, 2)
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
}

func TestThrottle_StopKeepsTheRateForItemsStillComing(t *testing.T) {
	const every = 20 * time.Millisecond
	p := pipeline.New(context.Background())
	gate := make(chan struct{})
	// The FanOut is not a source: after Stop it goes on, and its items
	// still pass the throttle one per interval.
	src := pipeline.FanOut(p, pipeline.Generate(p, flowInts(6)...), 1, func(ctx context.Context, v int) (int, error) {
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
	p.Stop()
	close(gate)
	start := time.Now()
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3, 4, 5, 6}, got)
	assert.GreaterOrEqual(t, time.Since(start), 4*every*8/10)
}

func TestThrottle_AParentDeadlineBeforeTheNextTokenFailsInsteadOfLosingItems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p := pipeline.New(ctx)
	got, err := pipeline.Collect(p, pipeline.Throttle(p, pipeline.Generate(p, 1, 2, 3), time.Hour, 1))
	assert.Equal(t, []int{1}, got)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "items 2 and 3 were lost: Wait must say why")
}
