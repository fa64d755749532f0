package pipeline_test

// Tests of batch.go: Batch and Unbatch.

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestBatch: items grouped into slices by size and by time.
func TestBatch(t *testing.T) {
	t.Run("groups items by size", func(t *testing.T) {
		cases := []struct {
			items, size int
			maxWait     time.Duration
			want        [][]int
		}{
			{10, 3, 0, [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}}},
			{10, 3, time.Hour, [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}}},
			{9, 3, 0, [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}}},
			{9, 3, time.Hour, [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}}},
			{4, 1, 0, [][]int{{0}, {1}, {2}, {3}}},
			{4, 1, time.Hour, [][]int{{0}, {1}, {2}, {3}}},
			{0, 5, 0, nil},
			{0, 5, time.Hour, nil},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("items=%d/size=%d/maxWait=%v", tc.items, tc.size, tc.maxWait), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), hangBound)
				defer cancel()
				p := pipeline.New(ctx)
				got, err := pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, ints(tc.items)...), tc.size, tc.maxWait))
				require.NoError(t, err, "the last batch is flushed when the input closes, without waiting maxWait")
				assert.Equal(t, tc.want, got)
			})
		}
	})

	t.Run("sends a partial batch after maxWait while the input is open", func(t *testing.T) {
		const maxWait = 50 * time.Millisecond
		p := pipeline.New(context.Background())
		gate := make(chan struct{})
		start := time.Now()
		out := pipeline.Batch(p, gated(p, gate, []int{1, 2}, []int{3, 4, 5}), 10, maxWait)

		// The producer is blocked on the gate: only the timer can send this.
		first := recv(t, out)
		elapsed := time.Since(start)
		assert.Equal(t, []int{1, 2}, first)
		assert.GreaterOrEqual(t, elapsed, maxWait*9/10, "sent before maxWait")

		close(gate)
		rest, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Equal(t, [][]int{{3, 4, 5}}, rest)
	})

	t.Run("maxWait counts from the batch's first item", func(t *testing.T) {
		const maxWait = 60 * time.Millisecond
		p := pipeline.New(context.Background())
		gate := make(chan struct{})
		// A full batch goes out, then the input idles: the timer must not send
		// an empty batch, and the next batch's clock starts with its own first
		// item.
		out := pipeline.Batch(p, gated(p, gate, []int{1, 2, 3}, []int{4}), 3, maxWait)
		assert.Equal(t, []int{1, 2, 3}, recv(t, out))
		select {
		case b := <-out:
			require.Failf(t, "unexpected batch", "got %v while the input was idle", b)
		case <-time.After(3 * maxWait):
		}
		close(gate)
		start := time.Now()
		assert.Equal(t, []int{4}, recv(t, out), "flushed when the input closed")
		assert.Less(t, time.Since(start), hangBound)
		rest, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Empty(t, rest)
	})

	t.Run("flushes the partial batch on Stop", func(t *testing.T) {
		for _, maxWait := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("maxWait=%v", maxWait), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), hangBound)
				defer cancel()
				p := pipeline.New(ctx)
				gate := make(chan struct{})
				// The FanOut is not a source: Stop does not end it, so the
				// batch's input stays open while the worker waits on item 4.
				mid := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 1, func(ctx context.Context, v int) (int, error) {
					if v == 4 {
						select {
						case <-gate:
						case <-ctx.Done():
						}
					}
					return v, nil
				})
				out := pipeline.Batch(p, mid, 10, maxWait)
				require.Eventually(t, func() bool { return stageStats(t, p, "batch#3").In == 3 },
					hangBound, time.Millisecond)

				p.Stop()
				assert.Equal(t, []int{1, 2, 3}, recv(t, out), "the partial batch left at once on Stop")
				close(gate)
				rest, err := pipeline.Collect(p, out)
				require.NoError(t, err)
				assert.Equal(t, [][]int{{4, 5}}, rest, "items after Stop form a new batch")
			})
		}
	})

	t.Run("Stop with nothing held sends no batch", func(t *testing.T) {
		for _, maxWait := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("maxWait=%v", maxWait), func(t *testing.T) {
				p := pipeline.New(context.Background())
				gate := make(chan struct{})
				mid := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(ctx context.Context, v int) (int, error) {
					select {
					case <-gate:
					case <-ctx.Done():
					}
					return v, nil
				})
				out := pipeline.Batch(p, mid, 10, maxWait)
				require.Eventually(t, func() bool { return stageStats(t, p, "fanout#2").In == 1 },
					hangBound, time.Millisecond)
				p.Stop()
				close(gate)
				got, err := pipeline.Collect(p, out)
				require.NoError(t, err)
				assert.Equal(t, [][]int{{1}}, got)
			})
		}
	})

	t.Run("never sends an empty batch", func(t *testing.T) {
		cases := []struct {
			items, size int
			maxWait     time.Duration
			pause       time.Duration // between items
		}{
			{200, 7, 0, 0},
			{200, 7, 100 * time.Microsecond, 0},
			{60, 4, 200 * time.Microsecond, 100 * time.Microsecond},
			{60, 50, time.Millisecond, 300 * time.Microsecond},
			{30, 1, time.Microsecond, 50 * time.Microsecond},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("size=%d/maxWait=%v/pause=%v", tc.size, tc.maxWait, tc.pause), func(t *testing.T) {
				p := pipeline.New(context.Background())
				src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
					for i := range tc.items {
						if err := emit(i); err != nil {
							return err
						}
						if tc.pause > 0 {
							time.Sleep(tc.pause)
						}
					}
					return nil
				})
				batches, err := pipeline.Collect(p, pipeline.Batch(p, src, tc.size, tc.maxWait))
				require.NoError(t, err)
				var flat []int
				for _, b := range batches {
					require.NotEmpty(t, b, "empty batch in %v", batches)
					assert.LessOrEqual(t, len(b), tc.size)
					flat = append(flat, b...)
				}
				assert.Equal(t, ints(tc.items), flat, "every item once, in order")
			})
		}
	})

	t.Run("hands downstream slices it may keep", func(t *testing.T) {
		for _, maxWait := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("maxWait=%v", maxWait), func(t *testing.T) {
				const size, items = 4, 40
				p := pipeline.New(context.Background())
				var kept [][]int
				for b := range pipeline.All(p, pipeline.Batch(p, pipeline.Generate(p, ints(items)...), size, maxWait)) {
					n := len(kept)
					want := ints(items)[n*size : (n+1)*size]
					require.Equal(t, want, b, "batch %d was changed by what we did to earlier ones", n)
					kept = append(kept, b)
					// Scribble over everything the slice can reach.
					full := b[:cap(b)]
					for i := range full {
						full[i] = -1
					}
				}
				require.NoError(t, p.Wait())
				require.Len(t, kept, items/size)

				type span struct{ lo, hi uintptr }
				spans := make([]span, len(kept))
				for i, b := range kept {
					full := b[:cap(b)]
					lo := uintptr(unsafe.Pointer(unsafe.SliceData(full)))
					spans[i] = span{lo, lo + uintptr(cap(full))*unsafe.Sizeof(full[0])}
					for j, v := range b {
						assert.Equal(t, -1, v, "batch %d item %d: a later batch reused this slice", i, j)
					}
				}
				for i := range spans {
					for j := i + 1; j < len(spans); j++ {
						overlap := spans[i].lo < spans[j].hi && spans[j].lo < spans[i].hi
						assert.False(t, overlap, "batches %d and %d share a backing array", i, j)
					}
				}
			})
		}
	})

	t.Run("stats count items, not batches", func(t *testing.T) {
		p := pipeline.New(context.Background())
		batches := pipeline.Batch(p, pipeline.Generate(p, ints(10)...), 3, 0)
		got, err := pipeline.Collect(p, pipeline.Unbatch(p, batches))
		require.NoError(t, err)
		require.Len(t, got, 10)
		for _, name := range []string{"batch#2", "unbatch#3"} {
			st := stageStats(t, p, name)
			assert.Equal(t, uint64(10), st.In, name)
			assert.Equal(t, uint64(10), st.Out, name)
			assert.Zero(t, st.Dropped, name)
		}
	})

	t.Run("cancel ends it though nobody reads the output", func(t *testing.T) {
		t.Run("by size", func(t *testing.T) {
			assertCancelEndsUnread(t, "batch#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch(p, in, 7, 0))
			})
		})
		t.Run("by time", func(t *testing.T) {
			assertCancelEndsUnread(t, "batch#2", func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch(p, in, 7, time.Millisecond))
			})
		})
	})

	t.Run("Stop delivers every emitted item", func(t *testing.T) {
		t.Run("by size", func(t *testing.T) {
			assertStopDeliversEmitted(t, "batch#2", false, true, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch(p, in, 7, 0))
			})
		})
		t.Run("by time", func(t *testing.T) {
			assertStopDeliversEmitted(t, "batch#2", false, true, func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch(p, in, 7, time.Millisecond))
			})
		})
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Batch size=0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch(p, in, 0, time.Second))
			}), []string{"batch#2", "size"}},
			{"Batch size<0", nil, onThree(func(p *pipeline.Pipeline, in <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch(p, in, -1, 0))
			}), []string{"batch#2", "size"}},
			{"Batch nil input", nil, onThree(func(p *pipeline.Pipeline, _ <-chan int) <-chan int {
				return pipeline.Unbatch(p, pipeline.Batch[int](p, nil, 3, 0))
			}), []string{"batch#2", "input"}},
		})
	})

	// Regression: Batch sent its partial batch when a cancel showed as its input closing (issue 3).
	// Batch's doc: "On cancel the partial batch is discarded", also when the
	// cancellation is seen as the input closing.
	t.Run("discards the partial batch on cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := pipeline.New(ctx)
		src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
			_ = emit(1)
			_ = emit(2)
			<-ctx.Done()
			return ctx.Err()
		})
		out := pipeline.Batch(p, src, 10, time.Hour)
		require.Eventually(t, func() bool { return p.Stats()[1].In == 2 }, hangBound, time.Millisecond)
		cancel()
		require.ErrorIs(t, p.Wait(), context.Canceled)
		b, ok := <-out
		assert.False(t, ok, "a batch was sent after cancel: %v", b)
	})

	// Regression: Batch allocated size items per batch: 1<<40 crashed the process with out of memory, math.MaxInt panicked (issue 6).
	// Batch allocates a slice of capacity size for every batch (batch.go, add):
	// a large size with a maxWait — "flush every second, at most a million" — costs
	// size × sizeof(T) per batch however few items arrive; 1<<40 kills the
	// process with a fatal "out of memory" that no recover can catch, and
	// math.MaxInt fails the pipeline with a makeslice panic. Bounded memory says
	// a batch should cost what it holds. The crash runs in a child process.
	t.Run("a huge size costs what the batch holds", func(t *testing.T) {
		if size := os.Getenv("TEST_BATCH_SIZE"); size != "" {
			n := map[string]int{"maxint": math.MaxInt, "1<<40": 1 << 40}[size]
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, 1, 2), n, time.Millisecond))
			if err != nil || len(got) != 1 || len(got[0]) != 2 {
				t.Fatalf("got %v, %v; want [[1 2]], nil", got, err)
			}
			return
		}
		for _, size := range []string{"maxint", "1<<40"} {
			t.Run(size, func(t *testing.T) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestBatch$/^a_huge_size_costs_what_the_batch_holds$", "-test.v")
				cmd.Env = append(os.Environ(), "TEST_BATCH_SIZE="+size)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "Batch(size %s) in a child process:\n%s", size, firstBytes(out, 1500))
				assert.Contains(t, string(out), "--- PASS: TestBatch/a_huge_size_costs_what_the_batch_holds",
					"the child process ran this test")
			})
		}
	})
}

// firstBytes is at most the first n bytes of b.
func firstBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// TestUnbatch: slices back into items.
func TestUnbatch(t *testing.T) {
	t.Run("restores the items in order", func(t *testing.T) {
		for _, size := range []int{1, 7, 100, 5000} {
			t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
				p := pipeline.New(context.Background())
				got, err := pipeline.Collect(p, pipeline.Unbatch(p,
					pipeline.Batch(p, pipeline.Generate(p, ints(1000)...), size, time.Millisecond)))
				require.NoError(t, err)
				assert.Equal(t, ints(1000), got)
			})
		}
	})

	t.Run("skips empty and nil slices", func(t *testing.T) {
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.Unbatch(p, pipeline.Generate(p, []int{1, 2}, nil, []int{}, []int{3})))
		require.NoError(t, err)
		assert.Equal(t, []int{1, 2, 3}, got)
		st := stageStats(t, p, "unbatch#2")
		assert.Equal(t, uint64(3), st.In)
		assert.Equal(t, uint64(3), st.Out)
	})

	t.Run("rejects invalid arguments", func(t *testing.T) {
		runInvalid(t, []invalidCase{
			{"Unbatch nil input", nil, onThree(func(p *pipeline.Pipeline, _ <-chan int) <-chan int { return pipeline.Unbatch[int](p, nil) }),
				[]string{"unbatch#2", "input"}},
		})
	})
}
