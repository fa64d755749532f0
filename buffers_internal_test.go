package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpillOrder checks that a channel and its spill, written with offer and
// read channel first, give the items in the order they were written, with
// reads and writes interleaved in every way the writer meets: channel
// room, a full channel, a spill being emptied while the channel fills again.
func TestSpillOrder(t *testing.T) {
	ch := make(chan int, 4)
	q := newSpill[int](8)
	next, want := 0, 0
	write := func(k int) {
		for range k {
			require.True(t, q.offer(ch, next))
			next++
		}
	}
	read := func(k int) {
		for range k {
			var v int
			select {
			case v = <-ch:
			default:
				var ok bool
				v, ok = q.pop()
				require.True(t, ok, "an item is waiting")
			}
			assert.Equal(t, want, v)
			want++
		}
	}
	write(12) // 4 in the channel, 8 in the spill
	assert.False(t, q.offer(ch, next), "both are full")
	assert.Equal(t, 8, q.waiting())
	read(5)  // the channel's 4, then the spill's first
	write(1) // the spill is not empty: it goes there, behind the others
	read(3)
	write(2)
	read(7)
	write(6) // the spill is empty: these go to the channel first
	assert.Equal(t, 2, q.waiting())
	read(6)
	assert.Equal(t, next, want)
	_, ok := q.pop()
	assert.False(t, ok)
	assert.Empty(t, ch)
	// Compaction keeps the spill's storage bounded however long it runs.
	for range 1000 {
		write(10)
		read(10)
	}
	assert.LessOrEqual(t, cap(q.items), 2*q.max)
}

// TestSpillPut checks that put waits while the spill is full, goes on once
// the readers have taken half of it, and gives up when the pipeline is
// cancelled.
func TestSpillPut(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx)
	var c counters
	ch := make(chan int, 1)
	q := newSpill[int](4)
	for v := range 5 { // one in the channel, four in the spill
		require.NoError(t, q.put(p, &c, ch, v, nil))
	}
	done := make(chan error, 1)
	go func() { done <- q.put(p, &c, ch, 5, nil) }()
	waiting := func(why string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("put returned %v %s", err, why)
		case <-time.After(20 * time.Millisecond):
		}
	}
	waiting("with the spill full")
	assert.Equal(t, 0, <-ch)
	waiting("when the channel's item was taken: that makes no room in the spill")
	next := func(want int) {
		t.Helper()
		v, ok := q.pop()
		require.True(t, ok)
		assert.Equal(t, want, v)
	}
	next(1)
	waiting("with the spill three quarters full")
	next(2)
	require.NoError(t, <-done, "the spill half full: put goes on")
	for _, want := range []int{3, 4, 5} {
		next(want)
	}
	// Full again, then cancelled: put gives up with the cause.
	for v := 6; v < 11; v++ {
		require.NoError(t, q.put(p, &c, ch, v, nil))
	}
	go func() { done <- q.put(p, &c, ch, 11, nil) }()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Positive(t, c.sendWait.Load(), "the wait is SendWait")
	assert.ErrorIs(t, p.Wait(), context.Canceled)
}
