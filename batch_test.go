package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

func TestBatch_GroupsItemsBySize(t *testing.T) {
	cases := []struct {
		items, size int
		maxWait     time.Duration
		want        [][]int
	}{
		{10, 3, 0, [][]int{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10}}},
		{10, 3, time.Hour, [][]int{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10}}},
		{9, 3, 0, [][]int{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}},
		{9, 3, time.Hour, [][]int{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}},
		{4, 1, 0, [][]int{{1}, {2}, {3}, {4}}},
		{4, 1, time.Hour, [][]int{{1}, {2}, {3}, {4}}},
		{0, 5, 0, nil},
		{0, 5, time.Hour, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("items=%d/size=%d/maxWait=%v", tc.items, tc.size, tc.maxWait), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			defer cancel()
			p := pipeline.New(ctx)
			got, err := pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, flowInts(tc.items)...), tc.size, tc.maxWait))
			require.NoError(t, err, "the last batch is flushed when the input closes, without waiting maxWait")
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBatch_SendsAPartialBatchAfterMaxWaitWhileTheInputIsOpen(t *testing.T) {
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
}

func TestBatch_MaxWaitCountsFromTheBatchsFirstItem(t *testing.T) {
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
}

func TestBatch_FlushesThePartialBatchOnStop(t *testing.T) {
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
}

func TestBatch_StopWithNothingHeldSendsNoBatch(t *testing.T) {
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
}

func TestBatch_NeverSendsAnEmptyBatch(t *testing.T) {
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
				for i := 1; i <= tc.items; i++ {
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
			assert.Equal(t, flowInts(tc.items), flat, "every item once, in order")
		})
	}
}

func TestBatch_HandsDownstreamSlicesItMayKeep(t *testing.T) {
	for _, maxWait := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("maxWait=%v", maxWait), func(t *testing.T) {
			const size, items = 4, 40
			p := pipeline.New(context.Background())
			var kept [][]int
			for b := range pipeline.All(p, pipeline.Batch(p, pipeline.Generate(p, flowInts(items)...), size, maxWait)) {
				n := len(kept)
				want := flowInts(items)[n*size : (n+1)*size]
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
}

func TestBatch_StatsCountItemsNotBatches(t *testing.T) {
	p := pipeline.New(context.Background())
	batches := pipeline.Batch(p, pipeline.Generate(p, flowInts(10)...), 3, 0)
	got, err := pipeline.Collect(p, pipeline.Unbatch(p, batches))
	require.NoError(t, err)
	require.Len(t, got, 10)
	for _, name := range []string{"batch#2", "unbatch#3"} {
		st := stageStats(t, p, name)
		assert.Equal(t, uint64(10), st.In, name)
		assert.Equal(t, uint64(10), st.Out, name)
		assert.Zero(t, st.Dropped, name)
	}
}

func TestUnbatch_RestoresTheItemsInOrder(t *testing.T) {
	for _, size := range []int{1, 7, 100, 5000} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			p := pipeline.New(context.Background())
			got, err := pipeline.Collect(p, pipeline.Unbatch(p,
				pipeline.Batch(p, pipeline.Generate(p, flowInts(1000)...), size, time.Millisecond)))
			require.NoError(t, err)
			assert.Equal(t, flowInts(1000), got)
		})
	}
}

func TestUnbatch_SkipsEmptyAndNilSlices(t *testing.T) {
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.Unbatch(p, pipeline.Generate(p, []int{1, 2}, nil, []int{}, []int{3})))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3}, got)
	st := stageStats(t, p, "unbatch#2")
	assert.Equal(t, uint64(3), st.In)
	assert.Equal(t, uint64(3), st.Out)
}
