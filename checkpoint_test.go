package pipeline_test

// Tests of Checkpoint: the commit rule as a property over random completion
// orders through every kind of stage, the end, Stop and cancel, the bound on
// what it holds, the foreign reader, and its bad arguments.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// ledger follows every copy of every source item in a checkpoint test: an
// item is handled once each of its copies is (pending drops to zero).
type ledger struct {
	pending []atomic.Int32
	handled []atomic.Bool

	mu         sync.Mutex
	commits    []pipeline.Position
	violations []string
}

func newLedger(n int) *ledger {
	l := &ledger{pending: make([]atomic.Int32, n), handled: make([]atomic.Bool, n)}
	for i := range l.pending {
		l.pending[i].Store(1)
	}
	return l
}

// copies adds n copies of item id (a FlatMap child each, a Tee branch).
func (l *ledger) copies(id, n int) { l.pending[id].Add(int32(n)) }

// done marks one copy of id handled.
func (l *ledger) done(id int) {
	if left := l.pending[id].Add(-1); left == 0 {
		l.handled[id].Store(true)
	} else if left < 0 {
		l.violate("item %d handled once more than it has copies", id)
	}
}

func (l *ledger) violate(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.violations) < 10 {
		l.violations = append(l.violations, fmt.Sprintf(format, args...))
	}
}

// commit is the Checkpoint's commit function: it checks that every item
// before pos is handled, and that positions move forward.
func (l *ledger) commit(_ context.Context, pos pipeline.Position) error {
	for i := int64(0); i < pos.Offset && i < int64(len(l.handled)); i++ {
		if !l.handled[i].Load() {
			l.violate("commit %v before item %d is handled", pos, i)
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.commits); n > 0 && pos.Offset <= l.commits[n-1].Offset {
		l.violations = append(l.violations, fmt.Sprintf("commit %v after %v", pos, l.commits[n-1]))
	}
	l.commits = append(l.commits, pos)
	return nil
}

func (l *ledger) last() (pipeline.Position, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.commits) == 0 {
		return pipeline.Position{}, false
	}
	return l.commits[len(l.commits)-1], true
}

func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Empty(t, l.violations)
}

// ck is an item of a checkpointed source: its id is its position.
type ck struct {
	id  int
	led *ledger
}

func (c ck) Position() pipeline.Position {
	return pipeline.Position{Offset: int64(c.id), End: int64(c.id) + 1, Line: int64(c.id) + 1, EndLine: int64(c.id) + 2}
}

// Discard: a stage set the copy aside (filtered, dropped, skipped).
func (c ck) Discard(error) { c.led.done(c.id) }

func ckSource(p *pipeline.Pipeline, led *ledger, n int, opts ...pipeline.StageOption) <-chan ck {
	return pipeline.FromSeq(p, func(yield func(ck) bool) {
		for i := range n {
			if !yield(ck{id: i, led: led}) {
				return
			}
		}
	}, opts...)
}

// napper sleeps a random while (up to max) for item v: completion orders scramble.
func napper(salt uint64, maxNap time.Duration) func(int) {
	return func(id int) {
		if d := time.Duration(hash(uint64(id), salt) % uint64(maxNap)); d > maxNap/2 {
			time.Sleep(d - maxNap/2)
		} else {
			jitter(id)
		}
	}
}

// ckShapes are pipelines from a checkpointed source to sinks that mark each
// copy handled, covering every kind of stage.
var ckShapes = map[string]func(p *pipeline.Pipeline, src <-chan ck, r *rand.Rand) error{
	"fanout-filter-droponfull-onerror": func(p *pipeline.Pipeline, src <-chan ck, r *rand.Rand) error {
		salt, nap := r.Uint64(), napper(r.Uint64(), 300*time.Microsecond)
		skip := pipeline.OnError(func(*pipeline.StageError) error { return nil })
		mapped := pipeline.FanOut(p, src, 1+r.IntN(8), func(_ context.Context, c ck) (ck, error) {
			nap(c.id)
			if hash(uint64(c.id), salt)%7 == 0 {
				return c, errors.New("skip me") // OnError skips: Discard marks it
			}
			return c, nil
		}, skip)
		kept := pipeline.Filter(p, mapped, func(c ck) bool { return hash(uint64(c.id), salt)%5 != 0 })
		shed := pipeline.DropOnFull(p, kept, 1+r.IntN(3))
		return pipeline.ForEach(p, shed, 1+r.IntN(3), func(_ context.Context, c ck) error {
			nap(c.id + 1)
			c.led.done(c.id)
			return nil
		})
	},
	"flatmap-batch-unbatch": func(p *pipeline.Pipeline, src <-chan ck, r *rand.Rand) error {
		salt, nap := r.Uint64(), napper(r.Uint64(), 300*time.Microsecond)
		kids := pipeline.FlatMap(p, src, 1+r.IntN(4), func(_ context.Context, c ck, emit func(ck) error) error {
			k := int(hash(uint64(c.id), salt) % 4) // 0 to 3 children
			c.led.copies(c.id, k)
			for range k {
				nap(c.id)
				if err := emit(c); err != nil {
					return err
				}
			}
			c.led.done(c.id) // the parent itself
			return nil
		})
		batches := pipeline.Batch(p, kids, 1+r.IntN(7), time.Millisecond)
		if r.IntN(2) == 0 {
			batches = pipeline.Batch(p, pipeline.Unbatch(p, batches), 1+r.IntN(5), time.Millisecond)
		}
		return pipeline.ForEach(p, batches, 1+r.IntN(3), func(_ context.Context, b []ck) error {
			for _, c := range b {
				nap(c.id + 1)
				c.led.done(c.id)
			}
			return nil
		})
	},
	"tee-ordered-partition-merge": func(p *pipeline.Pipeline, src <-chan ck, r *rand.Rand) error {
		nap := napper(r.Uint64(), 300*time.Microsecond)
		twice := pipeline.FanOut(p, src, 2, func(_ context.Context, c ck) (ck, error) {
			c.led.copies(c.id, 1) // Tee makes two
			return c, nil
		})
		branches := pipeline.Tee(p, twice, 2)
		ordered := pipeline.FanOutOrdered(p, branches[0], 1+r.IntN(4), func(_ context.Context, c ck) (ck, error) {
			nap(c.id)
			return c, nil
		})
		parts := pipeline.Partition(p, branches[1], 3, func(c ck) int { return c.id })
		merged := pipeline.Merge(p, ordered, pipeline.Merge(p, parts...))
		return pipeline.ForEach(p, merged, 1+r.IntN(3), func(_ context.Context, c ck) error {
			nap(c.id + 1)
			c.led.done(c.id)
			return nil
		})
	},
	"buffer-throttle-all": func(p *pipeline.Pipeline, src <-chan ck, r *rand.Rand) error {
		nap := napper(r.Uint64(), 300*time.Microsecond)
		buffered := pipeline.Buffer(p, src, 1+r.IntN(50))
		throttled := pipeline.Throttle(p, buffered, time.Microsecond, 8)
		mapped := pipeline.FanOut(p, throttled, 1+r.IntN(4), func(_ context.Context, c ck) (ck, error) {
			nap(c.id)
			return c, nil
		})
		for c := range pipeline.All(p, mapped) { // the loop body is the sink's call
			nap(c.id + 1)
			c.led.done(c.id)
		}
		return p.Wait()
	},
	"keyed-throttlekeyed-deadletters": func(p *pipeline.Pipeline, src <-chan ck, r *rand.Rand) error {
		salt, nap := r.Uint64(), napper(r.Uint64(), 300*time.Microsecond)
		dead := pipeline.NewDeadLetters[ck](p, 1<<16) // never read: the buffer holds them
		keyed := pipeline.FanOutKeyed(p, src, 1+r.IntN(4), func(c ck) int { return c.id % 5 }, func(_ context.Context, c ck) (ck, error) {
			nap(c.id)
			if hash(uint64(c.id), salt)%6 == 0 {
				c.led.done(c.id) // dead-lettered: handled when it is put
				return c, errors.New("dead")
			}
			return c, nil
		}, dead.Option())
		throttled := pipeline.ThrottleKeyed(p, keyed, func(c ck) int { return c.id % 3 }, time.Microsecond, 4)
		return pipeline.ForEach(p, throttled, 1+r.IntN(3), func(_ context.Context, c ck) error {
			nap(c.id + 1)
			c.led.done(c.id)
			return nil
		})
	},
}

// TestCheckpointProperty: through every kind of stage, with random
// completion orders, every commit comes after every item before it is
// handled, commits move forward, and the last one is the end of the input.
func TestCheckpointProperty(t *testing.T) {
	r := newRand(t)
	for name, shape := range ckShapes {
		t.Run(name, func(t *testing.T) {
			for run := range 4 {
				n := 200 + r.IntN(1500)
				led := newLedger(n)
				p := pipeline.New(context.Background(), randomBuffer(r)...)
				cp := pipeline.NewCheckpoint(p, time.Duration(1+r.IntN(3))*time.Millisecond, led.commit)
				src := ckSource(p, led, n, cp.Option())
				var err error
				within(t, "the pipeline", func() { err = shape(p, src, r) })
				require.NoError(t, err, "run %d", run)
				led.check(t)
				last, ok := led.last()
				require.True(t, ok, "no commit")
				assert.Equal(t, int64(n), last.Offset, "the last commit is the end")
				assert.Equal(t, int64(n+1), last.Line)
				for i := range n {
					require.True(t, led.handled[i].Load(), "item %d", i)
				}
				now, peak := cp.InFlight()
				assert.Zero(t, now)
				assert.Positive(t, peak)
			}
		})
	}
}

// TestCheckpointStopAndCancel: stopped or cancelled mid-run, the pipeline
// commits only handled positions; after Stop, the last commit is the end of
// what the source emitted.
func TestCheckpointStopAndCancel(t *testing.T) {
	r := newRand(t)
	for name, shape := range ckShapes {
		for _, hard := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cancel=%v", name, hard), func(t *testing.T) {
				const n = 1_000_000
				led := newLedger(n)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				p := pipeline.New(ctx)
				cp := pipeline.NewCheckpoint(p, time.Millisecond, led.commit)
				src := ckSource(p, led, n, cp.Option(), pipeline.Name("src"))
				after := time.Duration(5+r.IntN(40)) * time.Millisecond
				go func() {
					time.Sleep(after)
					if hard {
						cancel()
					} else {
						p.Stop()
					}
				}()
				var err error
				within(t, "the pipeline", func() { err = shape(p, src, r) })
				led.check(t)
				last, ok := led.last()
				if hard {
					require.ErrorIs(t, err, context.Canceled)
				} else {
					require.NoError(t, err)
					emitted := stageStats(t, p, "src").Out
					require.True(t, ok)
					assert.Equal(t, int64(emitted), last.Offset, "after Stop every item emitted is handled")
				}
				if ok {
					assert.Less(t, last.Offset, int64(n))
				}
			})
		}
	}
}

// TestCheckpointBounded: with one item stuck while a long input flows past
// it, the Checkpoint holds only what is in flight, and commits wait at the
// stuck item.
func TestCheckpointBounded(t *testing.T) {
	const n, stuck = 200_000, 10
	led := newLedger(n)
	p := pipeline.New(context.Background())
	cp := pipeline.NewCheckpoint(p, time.Millisecond, led.commit)
	release := make(chan struct{})
	var passed atomic.Int64
	out := pipeline.FanOut(p, ckSource(p, led, n, cp.Option()), 4, func(_ context.Context, c ck) (ck, error) {
		if c.id == stuck {
			<-release
		}
		return c, nil
	})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var early, late uint64
	go func() {
		for passed.Load() < n/4 {
			time.Sleep(time.Millisecond)
		}
		early = heap()
		for passed.Load() < n-1 {
			time.Sleep(time.Millisecond)
		}
		late = heap()
		last, _ := led.last()
		assert.Equal(t, int64(stuck), last.Offset, "commits wait at the stuck item")
		close(release)
	}()
	err := pipeline.ForEach(p, out, 2, func(_ context.Context, c ck) error {
		c.led.done(c.id)
		passed.Add(1)
		return nil
	})
	require.NoError(t, err)
	led.check(t)
	_, peak := cp.InFlight()
	assert.Less(t, peak, 1000, "what the Checkpoint holds is bounded by the items in flight")
	// 150,000 items went past the stuck one between the two samples: a few
	// bytes kept for each would show.
	assert.Less(t, int64(late)-int64(early), int64(2<<20), "the heap grew from %d to %d bytes", early, late)
	last, _ := led.last()
	assert.Equal(t, int64(n), last.Offset)
}

// TestCheckpointForeignReader: a stage's output read by a plain range loses
// its tickets: the pipeline fails with ErrUntracked rather than commit.
func TestCheckpointForeignReader(t *testing.T) {
	led := newLedger(10_000)
	p := pipeline.New(context.Background())
	cp := pipeline.NewCheckpoint(p, time.Millisecond, led.commit)
	out := pipeline.FanOut(p, ckSource(p, led, 10_000, cp.Option()), 2, func(_ context.Context, c ck) (ck, error) { return c, nil })
	within(t, "the range", func() {
		for range out {
		}
	})
	require.ErrorIs(t, waitErr(t, p), pipeline.ErrUntracked)
	led.check(t)
	if last, ok := led.last(); ok {
		assert.Zero(t, last.Offset, "nothing read by the range is committed")
	}

	// FromChan re-emitting a checkpointed item fails the same way.
	p = pipeline.New(context.Background())
	cp = pipeline.NewCheckpoint(p, time.Millisecond, led.commit)
	again := pipeline.FromChan(p, ckSource(p, newLedger(10), 10, cp.Option()))
	require.ErrorIs(t, pipeline.Drain(p, again), pipeline.ErrUntracked)
}

// TestCheckpointCommitError: an error from commit fails the pipeline.
func TestCheckpointCommitError(t *testing.T) {
	boom := errors.New("boom")
	p := pipeline.New(context.Background())
	cp := pipeline.NewCheckpoint(p, time.Millisecond, func(context.Context, pipeline.Position) error { return boom })
	err := pipeline.Drain(p, ckSource(p, newLedger(100), 100, cp.Option()))
	require.ErrorIs(t, err, boom)
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "checkpoint", se.Stage)
}

// TestCheckpointInvalid: bad arguments fail the pipeline with ErrInvalidArgument.
func TestCheckpointInvalid(t *testing.T) {
	commit := func(context.Context, pipeline.Position) error { return nil }
	led := newLedger(3)
	cases := map[string]func(p *pipeline.Pipeline) error{
		"nil commit": func(p *pipeline.Pipeline) error {
			pipeline.NewCheckpoint(p, time.Second, nil)
			return p.Wait()
		},
		"zero interval": func(p *pipeline.Pipeline) error {
			pipeline.NewCheckpoint(p, 0, commit)
			return p.Wait()
		},
		"after a stage": func(p *pipeline.Pipeline) error {
			src := ckSource(p, led, 3)
			pipeline.NewCheckpoint(p, time.Second, commit)
			return pipeline.Drain(p, src)
		},
		"a second one": func(p *pipeline.Pipeline) error {
			pipeline.NewCheckpoint(p, time.Second, commit)
			pipeline.NewCheckpoint(p, time.Second, commit)
			return p.Wait()
		},
		"items not Positioned": func(p *pipeline.Pipeline) error {
			cp := pipeline.NewCheckpoint(p, time.Second, commit)
			return pipeline.Drain(p, pipeline.FromSeq(p, func(func(int) bool) {}, cp.Option()))
		},
		"not a source": func(p *pipeline.Pipeline) error {
			cp := pipeline.NewCheckpoint(p, time.Second, commit)
			return pipeline.Drain(p, pipeline.Filter(p, ckSource(p, led, 3), func(ck) bool { return true }, cp.Option()))
		},
		"two sources": func(p *pipeline.Pipeline) error {
			cp := pipeline.NewCheckpoint(p, time.Second, commit)
			return pipeline.Drain(p, pipeline.Merge(p, ckSource(p, led, 3, cp.Option()), ckSource(p, led, 3, cp.Option())))
		},
		"another pipeline": func(p *pipeline.Pipeline) error {
			other := pipeline.New(context.Background())
			cp := pipeline.NewCheckpoint(other, time.Second, commit)
			_ = other.Wait()
			pipeline.NewCheckpoint(p, time.Second, commit)
			return pipeline.Drain(p, ckSource(p, led, 3, cp.Option()))
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			var err error
			within(t, name, func() { err = run(p) })
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		})
	}
	assert.NotPanics(t, func() { pipeline.NewCheckpoint(nil, time.Second, commit) })
}

// seqItem is a Positioned int, for the benchmark.
type seqItem int

func (s seqItem) Position() pipeline.Position {
	return pipeline.Position{Offset: int64(s), End: int64(s) + 1, Line: int64(s) + 1, EndLine: int64(s) + 2}
}

// BenchmarkCheckpoint is the cost per item of following it: a source, a
// FanOut of four workers, a Filter and a sink, without and with a Checkpoint.
func BenchmarkCheckpoint(b *testing.B) {
	for _, followed := range []bool{false, true} {
		b.Run(fmt.Sprintf("checkpoint=%v", followed), func(b *testing.B) {
			b.ReportAllocs()
			p := pipeline.New(context.Background())
			var opts []pipeline.StageOption
			if followed {
				opts = append(opts, pipeline.NewCheckpoint(p, time.Millisecond, func(context.Context, pipeline.Position) error { return nil }).Option())
			}
			src := pipeline.FromSeq(p, func(yield func(seqItem) bool) {
				for i := range b.N {
					if !yield(seqItem(i)) {
						return
					}
				}
			}, opts...)
			mapped := pipeline.FanOut(p, src, 4, func(_ context.Context, s seqItem) (seqItem, error) { return s, nil })
			kept := pipeline.Filter(p, mapped, func(s seqItem) bool { return s%2 == 0 })
			require.NoError(b, pipeline.Drain(p, kept))
		})
	}
}

// TestCheckpointResumesFileLines: a FileLines job stopped or cancelled at
// random moments and resumed from its last commit each time handles every
// line; when it is only ever stopped, every line exactly once.
func TestCheckpointResumesFileLines(t *testing.T) {
	r := newRand(t)
	const n = 3000
	path := t.TempDir() + "/in.txt"
	var text []byte
	for i := range n {
		text = fmt.Appendf(text, "line %d\n", i+1)
	}
	require.NoError(t, os.WriteFile(path, text, 0o644))
	for _, hard := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel=%v", hard), func(t *testing.T) {
			seen := make([]atomic.Int32, n+1)
			var saved pipeline.Position
			for run := 0; ; run++ {
				require.Less(t, run, 1000, "the job never ends")
				ctx, cancel := context.WithCancel(context.Background())
				p := pipeline.New(ctx)
				cp := pipeline.NewCheckpoint(p, time.Millisecond, func(_ context.Context, pos pipeline.Position) error {
					saved = pos
					return nil
				})
				lines := pipeline.FileLines(p, path, saved, 80, cp.Option())
				mapped := pipeline.FanOut(p, lines, 4, func(_ context.Context, l pipeline.Line) (int64, error) {
					jitter(int(l.Pos.Line))
					return l.Pos.Line, nil
				})
				timer := time.AfterFunc(time.Duration(r.IntN(3000))*time.Microsecond, func() {
					if hard {
						cancel()
					} else {
						p.Stop()
					}
				})
				err := pipeline.ForEach(p, mapped, 2, func(_ context.Context, line int64) error {
					seen[line].Add(1)
					return nil
				})
				timer.Stop()
				cancel()
				if err != nil {
					require.ErrorIs(t, err, context.Canceled)
				}
				for line := int64(1); line < saved.Line; line++ {
					require.Positive(t, seen[line].Load(), "run %d: line %d is before the commit %v", run, line, saved)
				}
				if saved.Offset == int64(len(text)) {
					t.Logf("%d runs", run+1)
					break
				}
			}
			for line := 1; line <= n; line++ {
				if hard {
					assert.Positive(t, seen[line].Load(), "line %d", line)
				} else {
					assert.Equal(t, int32(1), seen[line].Load(), "line %d", line)
				}
			}
		})
	}
}

// TestCheckpointCollectErrors: under CollectErrors a failed item is not
// handled: the pipeline goes on, and commits stop before it.
func TestCheckpointCollectErrors(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		led := newLedger(100)
		p := pipeline.New(context.Background(), pipeline.CollectErrors())
		cp := pipeline.NewCheckpoint(p, time.Millisecond, led.commit)
		fn := func(_ context.Context, c ck) (ck, error) {
			if c.id == 40 {
				return c, errors.New("fails")
			}
			return c, nil
		}
		src := ckSource(p, led, 100, cp.Option())
		var out <-chan ck
		if ordered {
			out = pipeline.FanOutOrdered(p, src, 3, fn)
		} else {
			out = pipeline.FanOut(p, src, 3, fn)
		}
		var handled atomic.Int64
		err := pipeline.ForEach(p, out, 2, func(_ context.Context, c ck) error {
			c.led.done(c.id)
			handled.Add(1)
			return nil
		})
		require.Error(t, err)
		assert.Equal(t, int64(99), handled.Load(), "the pipeline went on")
		led.check(t)
		last, ok := led.last()
		require.True(t, ok)
		assert.Equal(t, int64(40), last.Offset, "ordered=%v: commits stop before the failed item", ordered)
	}
}
