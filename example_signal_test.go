//go:build unix

package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/ec0f1147/pipeline"
)

func ExampleStopOnSignal() {
	p := pipeline.New(context.Background())
	stop := pipeline.StopOnSignal(p) // Ctrl-C (os.Interrupt) and SIGTERM
	defer stop()

	var emitted atomic.Int64
	nums := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err // ErrStopped after the first signal: a clean end
			}
			emitted.Add(1)
		}
	})
	handled := 0
	err := pipeline.ForEach(p, nums, 1, func(_ context.Context, n int) error {
		handled++
		if n == 100 {
			// The program interrupts itself here; in real life, the user
			// presses Ctrl-C.
			self, _ := os.FindProcess(os.Getpid())
			_ = self.Signal(os.Interrupt)
		}
		return nil
	})
	fmt.Println("error:", err)
	fmt.Println("every item emitted was handled:", int64(handled) == emitted.Load())
	// Output:
	// error: <nil>
	// every item emitted was handled: true
}
