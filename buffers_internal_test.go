package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpillOrder checks that a channel and its spill, written with offer and
// read channel first, give the items in the order they were written, with
// reads and writes interleaved in every way the writer meets: channel
// room, a full channel, a spill being emptied while the channel fills again.
func TestSpillOrder(t *testing.T) {
	ch := make(chan int, 4)
	q := &spill[int]{room: 8}
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
	assert.LessOrEqual(t, cap(q.items), 2*q.room)
}
