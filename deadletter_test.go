package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

var errOdd = errors.New("odd")

// failOdd fails odd items and doubles even ones.
func failOdd(_ context.Context, v int) (int, error) {
	if v%2 == 1 {
		return 0, errOdd
	}
	return 2 * v, nil
}

// readLetters reads every dead letter of d on its own goroutine; the
// function returned waits for Out to close and returns them, sorted by item.
func readLetters[T any](t *testing.T, d *pipeline.DeadLetters[T], less func(a, b T) bool) func() []pipeline.DeadLetter[T] {
	var got []pipeline.DeadLetter[T]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range d.Out() {
			got = append(got, l)
		}
	}()
	return func() []pipeline.DeadLetter[T] {
		await(t, done, "the dead letters to close")
		sort.Slice(got, func(i, j int) bool { return less(got[i].Item, got[j].Item) })
		return got
	}
}

func intLess(a, b int) bool { return a < b }

func TestDeadLetters(t *testing.T) {
	stages := map[string]func(p *pipeline.Pipeline, in <-chan int, opts ...pipeline.StageOption) error{
		"fanout": func(p *pipeline.Pipeline, in <-chan int, opts ...pipeline.StageOption) error {
			return pipeline.Drain(p, pipeline.FanOut(p, in, 4, failOdd, opts...))
		},
		"fanoutordered": func(p *pipeline.Pipeline, in <-chan int, opts ...pipeline.StageOption) error {
			return pipeline.Drain(p, pipeline.FanOutOrdered(p, in, 4, failOdd, opts...))
		},
		"flatmap": func(p *pipeline.Pipeline, in <-chan int, opts ...pipeline.StageOption) error {
			return pipeline.Drain(p, pipeline.FlatMap(p, in, 4, func(ctx context.Context, v int, emit func(int) error) error {
				r, err := failOdd(ctx, v)
				if err != nil {
					return err
				}
				return emit(r)
			}, opts...))
		},
		"foreach": func(p *pipeline.Pipeline, in <-chan int, opts ...pipeline.StageOption) error {
			return pipeline.ForEach(p, in, 4, func(ctx context.Context, v int) error {
				_, err := failOdd(ctx, v)
				return err
			}, opts...)
		},
		"fanoutkeyed": func(p *pipeline.Pipeline, in <-chan int, opts ...pipeline.StageOption) error {
			return pipeline.Drain(p, pipeline.FanOutKeyed(p, in, 4, func(v int) int { return v % 5 }, failOdd, opts...))
		},
	}
	for kind, run := range stages {
		t.Run(kind+"/failed items arrive typed with their error, stage and attempts", func(t *testing.T) {
			p := pipeline.New(context.Background())
			dl := pipeline.NewDeadLetters[int](p, 0)
			letters := readLetters(t, dl, intLess)
			err := run(p, pipeline.FromSeq(p, slices.Values(ints(40))), pipeline.Name("work"), dl.Option(),
				pipeline.Retry(3, func(int) time.Duration { return 0 }))
			require.NoError(t, err)
			got := letters()
			require.Len(t, got, 20)
			for i, l := range got {
				assert.Equal(t, 2*i+1, l.Item)
				assert.ErrorIs(t, l.Err, errOdd)
				assert.Equal(t, "work", l.Stage)
				assert.Equal(t, 3, l.Attempts)
			}
			st := stageStats(t, p, "work")
			assert.Equal(t, uint64(20), st.DeadLetters)
			assert.Equal(t, uint64(20), st.Errors)
			assert.Equal(t, uint64(40), st.Retries)
			assertConserved(t, p.Stats())
			for _, s := range p.Stats() {
				if s.Kind == "deadletters" {
					assert.Equal(t, uint64(20), s.Out)
					assert.Equal(t, 1, s.Unread, "Out is read by a goroutine of the test, not by a stage")
				}
			}
		})
	}

	t.Run("a stage of the pipeline may read them; they close when the feeder ends", func(t *testing.T) {
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 0)
		out := pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(30))), 3, failOdd, dl.Option())
		second := pipeline.FanOut(p, dl.Out(), 2, func(_ context.Context, l pipeline.DeadLetter[int]) (int, error) {
			return 2 * l.Item, nil // the retry queue: every odd item, doubled
		}, pipeline.Name("second"))
		got, err := pipeline.Collect(p, pipeline.Merge(p, out, second))
		require.NoError(t, err)
		sort.Ints(got)
		want := make([]int, 30)
		for i := range want {
			want[i] = 2 * i
		}
		assert.Equal(t, want, got)
		assert.Zero(t, stageStats(t, p, "deadletters#1").Unread)
		assert.Equal(t, uint64(15), stageStats(t, p, "second").In)
	})

	t.Run("OnError sees the failure first; nil sends the item on, an error fails", func(t *testing.T) {
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 100)
		var seen atomic.Int64
		_, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(10))), 2, failOdd, dl.Option(),
			pipeline.OnError(func(*pipeline.StageError) error { seen.Add(1); return nil })))
		require.NoError(t, err)
		assert.Equal(t, int64(5), seen.Load())
		assert.Len(t, dl.Out(), 5)

		p = pipeline.New(context.Background())
		dl = pipeline.NewDeadLetters[int](p, 100)
		boom := errors.New("boom")
		_, err = pipeline.Collect(p, pipeline.FanOut(p, pipeline.FromSeq(p, slices.Values(ints(10))), 2, failOdd, dl.Option(),
			pipeline.OnError(func(*pipeline.StageError) error { return boom })))
		assert.ErrorIs(t, err, boom)
		assert.Empty(t, dl.Out())
	})

	t.Run("Stop loses nothing: every emitted item is a result or a dead letter", func(t *testing.T) {
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 0)
		letters := readLetters(t, dl, intLess)
		var emitted atomic.Int64
		out := pipeline.FanOut(p, counter(p, &emitted), 4, failOdd, dl.Option())
		n := 0
		for range pipeline.All(p, out) {
			if n++; n == 50 {
				p.Stop()
			}
		}
		require.NoError(t, p.Wait())
		got := letters()
		assert.Equal(t, emitted.Load(), int64(n+len(got)))
		for _, l := range got {
			assert.Equal(t, 1, l.Item%2)
		}
	})

	t.Run("cancel ends the pipeline promptly though nobody reads them", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline.New(ctx)
		dl := pipeline.NewDeadLetters[int](p, 0)
		fail := func(context.Context, int) (int, error) { return 0, errOdd }
		out := pipeline.FanOut(p, counter(p, nil), 4, fail, dl.Option(), pipeline.Name("failing"))
		go func() {
			for stageStats(t, p, "failing").In < 4 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		var err error
		within(t, "a cancelled pipeline with unread dead letters", func() { err = pipeline.Drain(p, out) })
		assert.ErrorIs(t, err, context.Canceled)
		requireClosed(t, dl.Out())
	})

	t.Run("with no stage feeding them, they close when the pipeline is sealed", func(t *testing.T) {
		p := pipeline.New(context.Background())
		dl := pipeline.NewDeadLetters[int](p, 1)
		assert.False(t, closedNow(dl.Out()))
		require.NoError(t, pipeline.Drain(p, three(p)))
		requireClosed(t, dl.Out())
	})

	t.Run("bad arguments are ErrInvalidArgument", func(t *testing.T) {
		cases := map[string]func(p *pipeline.Pipeline) error{
			"negative buffer": func(p *pipeline.Pipeline) error {
				dl := pipeline.NewDeadLetters[int](p, -1)
				requireClosed(t, dl.Out())
				return p.Wait()
			},
			"another item type": func(p *pipeline.Pipeline) error {
				dl := pipeline.NewDeadLetters[string](p, 0)
				return pipeline.Drain(p, pipeline.FanOut(p, three(p), 1, identity, dl.Option()))
			},
			"another pipeline": func(p *pipeline.Pipeline) error {
				other := pipeline.New(context.Background())
				dl := pipeline.NewDeadLetters[int](other, 0)
				require.NoError(t, other.Wait())
				return pipeline.Drain(p, pipeline.FanOut(p, three(p), 1, identity, dl.Option()))
			},
			"nil handle": func(p *pipeline.Pipeline) error {
				var dl *pipeline.DeadLetters[int]
				return pipeline.Drain(p, pipeline.FanOut(p, three(p), 1, identity, dl.Option()))
			},
			"a stage that takes no such option": func(p *pipeline.Pipeline) error {
				dl := pipeline.NewDeadLetters[int](p, 0)
				return pipeline.Drain(p, pipeline.Filter(p, three(p), keepAll, dl.Option()))
			},
			"a feeder built once they closed": func(p *pipeline.Pipeline) error {
				dl := pipeline.NewDeadLetters[int](p, 0)
				src := three(p)
				p.Stop()
				go func() { _ = p.Shutdown(context.Background()) }() // seals it
				for !closedNow(dl.Out()) {
					time.Sleep(time.Millisecond)
				}
				return pipeline.Drain(p, pipeline.FanOut(p, src, 1, identity, dl.Option()))
			},
		}
		for name, run := range cases {
			t.Run(name, func(t *testing.T) {
				err := run(pipeline.New(context.Background()))
				assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			})
		}
		dl := pipeline.NewDeadLetters[int](nil, 0)
		requireClosed(t, dl.Out())
	})

	t.Run("a property: results and dead letters partition the input, whatever the workers", func(t *testing.T) {
		r := newRand(t)
		for round := 0; round < 20; round++ {
			n, workers, salt := r.IntN(200), 1+r.IntN(8), r.Uint64()
			p := pipeline.New(context.Background(), randomBuffer(r)...)
			dl := pipeline.NewDeadLetters[int](p, r.IntN(4))
			letters := readLetters(t, dl, intLess)
			fails := func(v int) bool { return hash(uint64(v), salt)%3 == 0 }
			out := pipeline.FanOutOrdered(p, pipeline.FromSeq(p, slices.Values(ints(n))), workers, func(_ context.Context, v int) (int, error) {
				jitter(v)
				if fails(v) {
					return 0, fmt.Errorf("item %d", v)
				}
				return v, nil
			}, dl.Option())
			got, err := pipeline.Collect(p, out)
			require.NoError(t, err)
			var ok, bad []int
			for _, v := range ints(n) {
				if fails(v) {
					bad = append(bad, v)
				} else {
					ok = append(ok, v)
				}
			}
			assert.Equal(t, ok, nilIfEmpty(got), "results keep input order")
			var gotBad []int
			for _, l := range letters() {
				gotBad = append(gotBad, l.Item)
				assert.EqualError(t, l.Err, fmt.Sprintf("item %d", l.Item))
			}
			assert.Equal(t, bad, gotBad)
			assertConserved(t, p.Stats())
		}
	})
}

func nilIfEmpty(s []int) []int {
	if len(s) == 0 {
		return nil
	}
	return s
}
