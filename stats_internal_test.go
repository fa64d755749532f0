package pipeline

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestCountersSize checks that a worker's counters fill two cache lines
// exactly, so that two workers' counters never share one.
func TestCountersSize(t *testing.T) {
	assert.Equal(t, uintptr(128), unsafe.Sizeof(counters{}))
}
