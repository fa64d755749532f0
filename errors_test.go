package pipeline_test

// Tests of errors.go: StageError, PanicError, ErrInvalidArgument and the
// Discarder contract. The argument checks of each stage are in its own file.

import (
	"context"
	"errors"
	"iter"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestStageError: the first failure of a stage, as every sink reports it.
func TestStageError(t *testing.T) {
	t.Run("the first failure cancels the pipeline and is reported once", func(t *testing.T) {
		boom := errors.New("boom")
		late := errors.New("late error after cancel")
		// Items 0..2 hold three workers until the pipeline is cancelled, then
		// fail with late; item 3 (on the fourth worker) fails first, with boom.
		build := func(p *pipeline.Pipeline) <-chan int {
			started := make(chan struct{}, 3)
			return pipeline.FanOut(p, pipeline.Generate(p, ints(10)...), 4,
				func(ctx context.Context, v int) (int, error) {
					switch {
					case v < 3:
						started <- struct{}{}
						<-ctx.Done()
						return 0, late
					case v == 3:
						for range 3 {
							<-started
						}
						return 0, boom
					}
					return v, nil
				})
		}
		sinks := []struct {
			name string
			sink func(p *pipeline.Pipeline, in <-chan int) error
		}{
			{"Collect", func(p *pipeline.Pipeline, in <-chan int) error {
				_, err := pipeline.Collect(p, in)
				return err
			}},
			{"Drain", pipeline.Drain[int]},
			{"Reduce", func(p *pipeline.Pipeline, in <-chan int) error {
				_, err := pipeline.Reduce(p, in, 0, func(a, v int) int { return a + v })
				return err
			}},
			{"ForEach", func(p *pipeline.Pipeline, in <-chan int) error {
				return pipeline.ForEach(p, in, 2, func(context.Context, int) error { return nil })
			}},
			{"All", func(p *pipeline.Pipeline, in <-chan int) error {
				for range pipeline.All(p, in) {
				}
				return p.Wait()
			}},
		}
		for _, sk := range sinks {
			t.Run(sk.name, func(t *testing.T) {
				p := pipeline.New(context.Background())
				err := sk.sink(p, build(p))

				var se *pipeline.StageError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, "fanout#2", se.Stage)
				assert.Equal(t, 3, se.Item)
				assert.Equal(t, boom, se.Err)
				assert.ErrorIs(t, err, boom)
				assert.NotErrorIs(t, err, late)
				assert.Contains(t, err.Error(), "fanout#2")
				assert.Contains(t, err.Error(), "boom")

				assert.Same(t, se, p.Wait(), "Wait must return the very error the sink returned")
				select {
				case <-p.Context().Done():
				default:
					require.Fail(t, "pipeline context not done after a failure")
				}
				assert.Same(t, se, context.Cause(p.Context()))
			})
		}
	})
}

// TestPanicError: a panic in a user function becomes an error, never a crash.
func TestPanicError(t *testing.T) {
	t.Run("a panic in any user function is recovered", func(t *testing.T) {
		const boom = "core: boom"
		fail := errors.New("item failed")
		cases := []struct {
			name  string
			stage string
			item  any
			run   func(p *pipeline.Pipeline) error
		}{
			{"FanOut fn", "fanout#2", 2, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2,
					func(_ context.Context, v int) (int, error) {
						if v == 2 {
							panic(boom)
						}
						return v, nil
					}))
			}},
			{"FanOutOrdered fn", "fanoutordered#2", 2, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3), 2,
					func(_ context.Context, v int) (int, error) {
						if v == 2 {
							panic(boom)
						}
						return v, nil
					}))
			}},
			{"FlatMap fn", "flatmap#2", 2, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.FlatMap(p, pipeline.Generate(p, 1, 2, 3), 2,
					func(_ context.Context, v int, emit func(int) error) error {
						if v == 2 {
							panic(boom)
						}
						return emit(v)
					}))
			}},
			{"Filter keep", "filter#2", 2, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.Filter(p, pipeline.Generate(p, 1, 2, 3), func(v int) bool {
					if v == 2 {
						panic(boom)
					}
					return true
				}))
			}},
			{"Partition route", "partition#2", 2, func(p *pipeline.Pipeline) error {
				outs := pipeline.Partition(p, pipeline.Generate(p, 1, 2, 3), 2, func(v int) int {
					if v == 2 {
						panic(boom)
					}
					return v
				})
				return pipeline.Drain(p, pipeline.Merge(p, outs...))
			}},
			{"Produce fn", "produce#1", nil, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
					if err := emit(1); err != nil {
						return err
					}
					panic(boom)
				}))
			}},
			{"FromSeq seq", "fromseq#1", nil, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.FromSeq(p, iter.Seq[int](func(yield func(int) bool) {
					if !yield(1) {
						return
					}
					panic(boom)
				})))
			}},
			{"Reduce fn", "reduce", 2, func(p *pipeline.Pipeline) error {
				_, err := pipeline.Reduce(p, pipeline.Generate(p, 1, 2, 3), 0, func(a, v int) int {
					if v == 2 {
						panic(boom)
					}
					return a + v
				})
				return err
			}},
			{"OnError handler", "fanout#2", 2, func(p *pipeline.Pipeline) error {
				return pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2,
					func(_ context.Context, v int) (int, error) {
						if v == 2 {
							return 0, fail
						}
						return v, nil
					}, pipeline.OnError(func(*pipeline.StageError) error { panic(boom) })))
			}},
			{"ForEach fn", "foreach#2", 2, func(p *pipeline.Pipeline) error {
				return pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3), 2, func(_ context.Context, v int) error {
					if v == 2 {
						panic(boom)
					}
					return nil
				})
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := pipeline.New(context.Background())
				var err error
				within(t, "the sink", func() { err = tc.run(p) })

				var se *pipeline.StageError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.stage, se.Stage)
				assert.Equal(t, tc.item, se.Item)
				var pe *pipeline.PanicError
				require.ErrorAs(t, se.Err, &pe, "the StageError must hold the PanicError")
				assert.Equal(t, boom, pe.Value)
				assert.NotEmpty(t, pe.Stack)
				assert.Contains(t, string(pe.Stack), "errors_test.go",
					"the stack must be the panicking goroutine's")
				assert.Contains(t, err.Error(), boom)
				assert.Equal(t, err, p.Wait())
			})
		}
	})

	t.Run("a panic with an error value is reachable by errors.Is", func(t *testing.T) {
		cause := errors.New("core: panicked with an error")
		p := pipeline.New(context.Background())
		err := pipeline.Drain(p, pipeline.FanOut(p, pipeline.Generate(p, 1), 1,
			func(context.Context, int) (int, error) { panic(cause) }))
		var pe *pipeline.PanicError
		require.ErrorAs(t, err, &pe)
		assert.ErrorIs(t, err, cause)
	})
}

// TestErrInvalidArgument: bad arguments fail the pipeline, never panic or hang.
func TestErrInvalidArgument(t *testing.T) {
	// Regression: a huge size or count panicked on the caller (makechan/makeslice: size out of range) (issue 6).
	// Sizes and counts too large to allocate panic on the caller's goroutine
	// (makechan/makeslice: size out of range) instead of returning an error
	// wrapping ErrInvalidArgument (or working): "never a panic".
	t.Run("sizes too large to allocate fail instead of panicking", func(t *testing.T) {
		ok := func(_ context.Context, v int) (int, error) { return v, nil }
		cases := map[string]func(p *pipeline.Pipeline, in <-chan int) <-chan int{
			"Buffer(MaxInt)":     func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Buffer(p, in, math.MaxInt) },
			"DropOnFull(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.DropOnFull(p, in, math.MaxInt) },
			"BufferSize(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOut(p, in, 1, ok, pipeline.BufferSize(math.MaxInt))
			},
			"FanOut workers MaxInt": func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.FanOut(p, in, math.MaxInt, ok) },
			"FanOutOrdered workers MaxInt": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.FanOutOrdered(p, in, math.MaxInt, ok)
			},
			"Tee(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Merge(p, pipeline.Tee(p, in, math.MaxInt)...)
			},
			"Partition(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Merge(p, pipeline.Partition(p, in, math.MaxInt, func(int) int { return 0 })...)
			},
		}
		for name, build := range cases {
			t.Run(name, func(t *testing.T) {
				p := pipeline.New(context.Background())
				var out <-chan int
				require.NotPanics(t, func() { out = build(p, pipeline.Generate(p, 1)) })
				_, err := pipeline.Collect(p, out)
				if err != nil {
					assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
				}
			})
		}
		t.Run("DefaultBuffer(MaxInt)", func(t *testing.T) {
			require.NotPanics(t, func() {
				p := pipeline.New(context.Background(), pipeline.DefaultBuffer(math.MaxInt))
				_, err := pipeline.Collect(p, pipeline.Generate(p, 1))
				if err != nil {
					assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
				}
			})
		})
	})
}

// ticket is an item that records why a stage set it aside, and how often
// it was told.
type ticket struct {
	id     int
	mu     sync.Mutex
	reason error
	calls  int
}

func (tk *ticket) Discard(reason error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.reason = reason
	tk.calls++
}

// why is the reason the ticket was last told, or nil.
func (tk *ticket) why() error {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.reason
}

// told is how many times the ticket was told.
func (tk *ticket) told() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.calls
}

// newTickets returns tickets 0..n-1.
func newTickets(n int) []*ticket {
	ts := make([]*ticket, n)
	for i := range ts {
		ts[i] = &ticket{id: i}
	}
	return ts
}

// TestDiscarder: an item a stage sets aside is told why.
func TestDiscarder(t *testing.T) {
	t.Run("Filter tells a dropped item ErrFiltered", func(t *testing.T) {
		tickets := newTickets(10)
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.Filter(p, pipeline.Generate(p, tickets...),
			func(c *ticket) bool { return c.id%2 == 0 }))
		require.NoError(t, err)
		assert.Len(t, got, 5)
		for _, c := range tickets {
			if c.id%2 == 0 {
				assert.NoError(t, c.why(), "ticket %d was kept", c.id)
			} else {
				assert.Equal(t, pipeline.ErrFiltered, c.why(), "ticket %d was dropped", c.id)
			}
		}
	})

	t.Run("an item OnError skips is told its StageError", func(t *testing.T) {
		bad := errors.New("bad ticket")
		tickets := newTickets(9)
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, tickets...), 3, func(_ context.Context, c *ticket) (int, error) {
			if c.id%3 == 0 {
				return 0, bad
			}
			return c.id, nil
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Len(t, got, 6)
		for _, c := range tickets {
			if c.id%3 != 0 {
				assert.NoError(t, c.why(), "ticket %d went through", c.id)
				continue
			}
			var se *pipeline.StageError
			require.ErrorAs(t, c.why(), &se, "ticket %d was skipped", c.id)
			assert.Same(t, c, se.Item)
			assert.Equal(t, "fanout#2", se.Stage)
			assert.ErrorIs(t, se, bad)
		}
	})

	t.Run("DropOnFull tells a dropped item ErrDropped", func(t *testing.T) {
		const items = 2000
		tickets := newTickets(items)
		p := pipeline.New(context.Background())
		out := pipeline.DropOnFull(p, pipeline.Generate(p, tickets...), 2)
		seen := map[int]bool{}
		for tk := range pipeline.All(p, out) {
			seen[tk.id] = true
			time.Sleep(10 * time.Microsecond)
		}
		require.NoError(t, p.Wait())

		st := stageStats(t, p, "droponfull#2")
		told := map[int]error{}
		for _, tk := range tickets {
			if tk.told() > 0 {
				told[tk.id] = tk.why()
			}
			assert.LessOrEqual(t, tk.told(), 1, "ticket %d was told more than once", tk.id)
		}
		assert.Equal(t, st.Dropped, uint64(len(told)), "every dropped item was told, once")
		assert.NotEmpty(t, told)
		for id, reason := range told {
			assert.ErrorIs(t, reason, pipeline.ErrDropped)
			assert.False(t, seen[id], "item %d was both delivered and dropped", id)
		}
		assert.Equal(t, items, len(seen)+len(told), "every item was delivered or told")
	})
}

// Regression: runtime.Goexit in a user function hung Wait (one worker) or lost the item and returned nil.
func TestErrGoexit(t *testing.T) {
	cases := []struct {
		name  string
		build func(p *pipeline.Pipeline) <-chan int
	}{
		{"FanOut, one worker", func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, pipeline.Generate(p, ints(100)...), 1, func(_ context.Context, v int) (int, error) {
				if v == 3 {
					runtime.Goexit()
				}
				return v, nil
			})
		}},
		{"FanOut, two workers", func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOut(p, pipeline.Generate(p, ints(100)...), 2, func(_ context.Context, v int) (int, error) {
				if v == 3 {
					runtime.Goexit()
				}
				return v, nil
			})
		}},
		{"Filter", func(p *pipeline.Pipeline) <-chan int {
			return pipeline.Filter(p, pipeline.Generate(p, ints(100)...), func(v int) bool {
				if v == 3 {
					runtime.Goexit()
				}
				return true
			})
		}},
		{"FanOutOrdered", func(p *pipeline.Pipeline) <-chan int {
			return pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(100)...), 2, func(_ context.Context, v int) (int, error) {
				if v == 3 {
					runtime.Goexit()
				}
				return v, nil
			})
		}},
		{"Produce", func(p *pipeline.Pipeline) <-chan int {
			return pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
				_ = emit(1)
				runtime.Goexit()
				return nil
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.name+" fails the pipeline with ErrGoexit", func(t *testing.T) {
			p := pipeline.New(context.Background())
			var err error
			within(t, "Drain", func() { err = pipeline.Drain(p, c.build(p)) })
			assert.ErrorIs(t, err, pipeline.ErrGoexit)
			var se *pipeline.StageError
			assert.ErrorAs(t, err, &se)
		})
	}
	t.Run("a Finally hook that calls it still ends the pipeline for every Wait", func(t *testing.T) {
		p := pipeline.New(context.Background())
		p.Finally(func(error) error { runtime.Goexit(); return nil })
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.Wait() // this goroutine is ended by the hook
		}()
		<-done
		assert.ErrorIs(t, p.Wait(), pipeline.ErrGoexit)
	})
}
