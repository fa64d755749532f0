package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPacerJudge checks the busy verdict: the mean time between emits,
// smoothed over windows, against busyAfter.
func TestPacerJudge(t *testing.T) {
	pc := newPacer(true)
	assert.True(t, pc.busy.Load(), "a new source counts as busy")
	now := time.Second
	window := func(gap time.Duration) {
		now += paceEvery * gap
		pc.judge(now)
	}
	pc.judge(now) // the first window starts
	window(100 * time.Nanosecond)
	assert.False(t, pc.busy.Load(), "emits 100 ns apart")
	for range 5 { // a producer that oversleeps 1 ms, then emits 50 items at once
		window(time.Millisecond / paceEvery)
		for range 3 {
			window(100 * time.Nanosecond)
			assert.True(t, pc.busy.Load(), "a burst of a bursty producer")
		}
	}
	for range 20 {
		window(100 * time.Nanosecond)
	}
	assert.False(t, pc.busy.Load(), "a producer that went on emitting 100 ns apart")
}

// TestPacerWeigh checks when a source rests from holding back: more than
// heldShareMax of its time held back over about paceHorizon.
func TestPacerWeigh(t *testing.T) {
	t.Run("a bursty producer held back in its bursts does not rest", func(t *testing.T) {
		pc := newPacer(true)
		for range 100 {
			pc.weigh(time.Millisecond, 0)
			for range 3 {
				pc.weigh(20*time.Microsecond, 16*time.Microsecond)
				require.Zero(t, pc.rest)
			}
		}
	})
	t.Run("a source held back half its time rests twice as long each time, up to restMax", func(t *testing.T) {
		pc := newPacer(true)
		var rests []int
		for range 2000 {
			if pc.rest > 0 {
				pc.weigh(100*time.Microsecond, 0) // resting: it holds nothing back
				continue
			}
			pc.weigh(100*time.Microsecond, 50*time.Microsecond)
			if pc.rest > 0 {
				rests = append(rests, pc.rest)
			}
		}
		require.GreaterOrEqual(t, len(rests), 8)
		assert.Equal(t, []int{1, 2, 4, 8, 16, 32, 64, 64}, rests[:8])
		t.Run("once its readers keep up, it holds back again", func(t *testing.T) {
			for pc.rest > 0 {
				pc.weigh(100*time.Microsecond, 0)
			}
			for range 10 {
				pc.weigh(100*time.Microsecond, time.Microsecond)
				require.Zero(t, pc.rest)
			}
			assert.Zero(t, pc.backoff, "the rest it would take next shrinks back")
		})
	})
}

// TestPacerLook checks which outputs a source watches: its own and those
// downstream of it that stages read, not one read from outside the
// pipeline; and that its readers are the stages reading its output.
func TestPacerLook(t *testing.T) {
	p := New(context.Background())
	src := Generate(p, 1, 2, 3)
	mapped := FanOut(p, src, 2, func(_ context.Context, v int) (int, error) { return v, nil })
	tee, other := Tee(p, mapped, 2), Tee(p, Generate(p, 4), 2)
	kept := Filter(p, tee[0], func(int) bool { return true })
	pc := newPacer(true)
	pc.look(p, p.stages[0])
	byStage := map[queuer]string{}
	for _, s := range p.stages {
		if s.queue != nil {
			byStage[s.queue] = s.kind
		}
	}
	var watched []string
	for _, q := range pc.watch {
		watched = append(watched, byStage[q])
	}
	// The first Tee has one branch read by Filter and one by no stage; the
	// Filter's output is read by no stage; the second Generate and Tee are
	// not downstream of the source.
	assert.Equal(t, []string{"generate", "fanout"}, watched)
	assert.Equal(t, []*stage{p.stages[1]}, pc.readers)
	seen := pc.seen
	pc.look(p, p.stages[0])
	assert.Equal(t, seen, pc.seen, "nothing added: nothing looked at again")
	require.NoError(t, Drain(p, Merge(p, kept, tee[1], other[0], other[1])))
}

// fakeQueue is a queuer whose length a test sets.
type fakeQueue struct{ n atomic.Int64 }

func (q *fakeQueue) queue() (int, int) { return int(q.n.Load()), 64 }

// TestHoldBack checks what ends a hold: a stage taking an item once nothing
// waits, cancel, stop, and the bound; and that a take while items still
// wait does not.
func TestHoldBack(t *testing.T) {
	setup := func(t *testing.T, ctx context.Context) (*Pipeline, *pacer, *fakeQueue) {
		p := New(ctx)
		pc := newPacer(true)
		q := &fakeQueue{}
		q.n.Store(2)
		pc.watch, pc.seen = []queuer{q}, len(p.stages) // look finds nothing new
		pc.atMost = time.Hour
		return p, pc, q
	}
	hold := func(p *Pipeline, pc *pacer, stop <-chan struct{}) <-chan struct{} {
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			pc.holdBack(p, &stage{}, 0, stop)
		}()
		return ended
	}
	waiting := func(t *testing.T, p *Pipeline) {
		require.Eventually(t, func() bool { return p.paced.Load() != nil }, time.Second, time.Millisecond)
	}
	t.Run("a take ends it once nothing waits", func(t *testing.T) {
		p, pc, q := setup(t, context.Background())
		ended := hold(p, pc, nil)
		var ctr counters
		waiting(t, p)
		q.n.Store(1)
		p.took(&ctr, 1)
		waiting(t, p) // woken, it looked, and waits again
		select {
		case <-ended:
			t.Fatal("the hold ended while an item still waits")
		case <-time.After(20 * time.Millisecond):
		}
		q.n.Store(0)
		p.took(&ctr, 1)
		<-ended
		assert.Nil(t, p.paced.Load(), "a source that ended its hold is not waiting")
		assert.Equal(t, uint64(2), ctr.in.Load(), "took counts what the stage took")
		assert.Positive(t, pc.held, "the hold counts as time held back")
	})
	t.Run("cancel ends it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p, pc, _ := setup(t, ctx)
		ended := hold(p, pc, nil)
		waiting(t, p)
		cancel()
		<-ended
		assert.Nil(t, p.paced.Load())
	})
	t.Run("stop ends it", func(t *testing.T) {
		p, pc, _ := setup(t, context.Background())
		stop := make(chan struct{})
		ended := hold(p, pc, stop)
		waiting(t, p)
		close(stop)
		<-ended
		assert.Nil(t, p.paced.Load())
	})
	t.Run("it ends after atMost", func(t *testing.T) {
		p, pc, _ := setup(t, context.Background())
		pc.atMost = time.Millisecond
		<-hold(p, pc, nil)
		assert.Nil(t, p.paced.Load())
	})
	t.Run("a second source that would hold back only yields", func(t *testing.T) {
		p, pc, _ := setup(t, context.Background())
		ended := hold(p, pc, nil)
		waiting(t, p)
		_, other, _ := setup(t, context.Background())
		other.holdBack(p, &stage{}, 0, nil) // returns at once
		var ctr counters
		pc.watch[0].(*fakeQueue).n.Store(0)
		p.took(&ctr, 1)
		<-ended
	})
}
