package pipeline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Filter's invalid-argument error for a nil predicate names its argument, keep.
func TestFilter_NilKeepMessageNamesKeep(t *testing.T) {
	p := pipeline.New(context.Background())
	pipeline.Filter(p, pipeline.Generate(p, 1), nil)
	err := p.Wait()
	require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "keep")
}

// FromChan promises that on Stop "values still in ch are then left there, not
// lost": a value it has taken from ch is delivered, not dropped. Here the
// output is unbuffered, three values are read, Stop is called: every value is
// delivered or still in ch.
func TestFromChan_StopLeavesUntakenValuesAndDeliversTakenOnes(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 10 {
		ch <- i
	}
	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
	out := pipeline.FromChan(p, ch)
	for want := range 3 {
		require.Equal(t, want, <-out)
	}
	p.Stop()
	rest, err := pipeline.Collect(p, out)
	require.NoError(t, err)

	var left []int
	for len(ch) > 0 {
		left = append(left, <-ch)
	}
	delivered := 3 + len(rest)
	assert.Equal(t, 10, delivered+len(left),
		"every value is either delivered or still in ch (delivered %d, rest %v, left in ch %v)", delivered, rest, left)
}
