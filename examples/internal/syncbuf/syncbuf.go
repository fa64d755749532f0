// Package syncbuf holds Buffer, a bytes.Buffer that one goroutine may write
// while another reads it: what a test reads while the program it runs
// writes its output.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Buffer is a bytes.Buffer whose Write and String may be called from
// different goroutines at once. The zero value is empty and ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// After returns what follows the first occurrence of marker, up to the end
// of its line, once that line is written whole; ok is false until then.
func (b *Buffer) After(marker string) (rest string, ok bool) {
	_, rest, found := strings.Cut(b.String(), marker)
	rest, _, whole := strings.Cut(rest, "\n")
	return rest, found && whole
}

// AwaitAfter is After once it is ok, polled every millisecond for up to
// within; ok is false if the line was not written whole by then.
func (b *Buffer) AwaitAfter(marker string, within time.Duration) (rest string, ok bool) {
	deadline := time.Now().Add(within)
	for {
		if rest, ok = b.After(marker); ok || time.Now().After(deadline) {
			return rest, ok
		}
		time.Sleep(time.Millisecond)
	}
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
