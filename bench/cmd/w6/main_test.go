package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// expected counts and sums 3x for the even x below n (3x is even exactly
// when x is).
func expected(n int) (count, sum int) {
	for x := 0; x < n; x += 2 {
		count++
		sum += 3 * x
	}
	return count, sum
}

func TestRun_StreamsMapFilterAndTallies(t *testing.T) {
	for _, impl := range []string{"pipeline", "handctx"} {
		for _, n := range []int{0, 1, 2, 1_001} {
			t.Run(fmt.Sprintf("impl=%s/n=%d", impl, n), func(t *testing.T) {
				count, sum, err := run(context.Background(), impl, n)
				require.NoError(t, err)
				wantCount, wantSum := expected(n)
				assert.Equal(t, wantCount, count)
				assert.Equal(t, wantSum, sum)
			})
		}
	}
}

func TestRun_NoneDoesNothing(t *testing.T) {
	count, sum, err := run(context.Background(), "none", 1_000)
	require.NoError(t, err)
	assert.Zero(t, count)
	assert.Zero(t, sum)
}

func TestRun_RejectsAnUnknownImpl(t *testing.T) {
	_, _, err := run(context.Background(), "nope", 10)
	assert.ErrorContains(t, err, `unknown -impl "nope"`)
}

func TestRun_StopsWhenItsContextIsCancelled(t *testing.T) {
	for _, impl := range []string{"pipeline", "handctx"} {
		t.Run("impl="+impl, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, _, err := run(ctx, impl, 1_000_000_000)
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
}
