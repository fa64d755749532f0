package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The correctness checks of the suite: every contender, on a small input of
// every workload, returns exactly the expected items (sorted first when the
// contender does not keep order). They are what `go test ./bench/...` runs.

// want applies w to in sequentially: the expected output, in input order.
func want(in []int, w work) []int {
	var out []int
	for _, x := range in {
		v := w.fn(x)
		if w.keep == nil || w.keep(v) {
			out = append(out, v)
		}
	}
	return out
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestUnorderedContenders_ReturnEveryKeptItem(t *testing.T) {
	cases := []struct {
		workload string
		items    int
		workers  []int
		work     work
	}{
		{"W1 map-filter", 2_000, []int{1, w2Work}, mapFilter},
		{"W3 sleep", 200, []int{w3Workers}, sleepy},
		{"W4 hash", 16, []int{1, 2}, hashing},
	}
	for _, tc := range cases {
		in := ints(tc.items)
		expected := sorted(want(in, tc.work))
		for _, c := range unordered {
			for _, workers := range tc.workers {
				t.Run(fmt.Sprintf("%s/impl=%s/workers=%d", tc.workload, c.impl, workers), func(t *testing.T) {
					got, err := c.run(context.Background(), in, workers, tc.work)
					require.NoError(t, err)
					assert.Equal(t, expected, sorted(got))
				})
			}
		}
	}
}

func TestOrderedContenders_ReturnKeptItemsInInputOrder(t *testing.T) {
	in := ints(2_000)
	expected := want(in, mapFilter)
	for _, c := range ordered {
		for _, workers := range []int{1, w2Work} {
			t.Run(fmt.Sprintf("impl=%s/workers=%d", c.impl, workers), func(t *testing.T) {
				got, err := c.run(context.Background(), in, workers, mapFilter)
				require.NoError(t, err)
				assert.Equal(t, expected, got)
			})
		}
	}
}

func TestFloor_ReturnsEveryItemInInputOrder(t *testing.T) {
	cases := []struct {
		workload string
		items    int
		workers  int
		work     work
	}{
		{"W1 map-filter", 2_000, w2Work, mapFilter},
		{"W3 sleep", 200, w3Workers, sleepy},
		{"W4 hash", 16, 2, hashing},
	}
	for _, tc := range cases {
		t.Run(tc.workload, func(t *testing.T) {
			in := ints(tc.items)
			got, err := floor.run(context.Background(), in, tc.workers, tc.work)
			require.NoError(t, err)
			assert.Equal(t, want(in, tc.work), got)
		})
	}
}

func TestBurn_IsDeterministicAndDependsOnItsInput(t *testing.T) {
	assert.Equal(t, burn(7), burn(7))
	assert.NotEqual(t, burn(7), burn(8))
}

func TestBatchers_KeepOrderAndFillBatchesBySize(t *testing.T) {
	in := ints(1_050)
	for _, c := range batchers {
		t.Run("impl="+c.impl, func(t *testing.T) {
			got, err := c.run(context.Background(), in, w5Size, 0)
			require.NoError(t, err)
			require.Len(t, got, 11)
			for i, b := range got[:10] {
				assert.Equal(t, in[i*w5Size:(i+1)*w5Size], b, "batch %d", i)
			}
			assert.Equal(t, in[1_000:], got[10])
		})
	}
}

func TestBatchers_WithMaxWaitKeepOrderAndBound(t *testing.T) {
	// The timer may fire early on a slow machine (the race detector), so a
	// batch may hold fewer than size items: check the bound and the order.
	in := ints(1_050)
	for _, c := range batchers {
		t.Run("impl="+c.impl, func(t *testing.T) {
			got, err := c.run(context.Background(), in, w5Size, w5MaxWait)
			require.NoError(t, err)
			var flat []int
			for i, b := range got {
				assert.NotEmpty(t, b, "batch %d", i)
				assert.LessOrEqual(t, len(b), w5Size, "batch %d", i)
				flat = append(flat, b...)
			}
			assert.Equal(t, in, flat)
		})
	}
}
