package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// gauge measures how much of something is in use at once (calls, slots,
// megabytes) and the most it ever was.
type gauge struct {
	mu       sync.Mutex
	cur, max int
}

// add takes n and returns the function that gives it back.
func (g *gauge) add(n int) (done func()) {
	g.mu.Lock()
	g.cur += n
	g.max = max(g.max, g.cur)
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.cur -= n
		g.mu.Unlock()
	}
}

// Max is the most ever in use at once.
func (g *gauge) Max() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// leakLine reports whether the goroutines started since there were before
// have all ended (giving stages that were told to stop a moment to return).
func leakLine(before int) string {
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine() - before; n > 0 {
		return fmt.Sprintf("LEAKED %d goroutines", n)
	}
	return "no goroutine left behind"
}
