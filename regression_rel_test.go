package pipeline_test

import (
	"context"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Regression checks for library bugs found by the reliability tests (issue
// 6), one minimal reproduction each. Each failed when written; all are fixed.

// FromChan takes a value from ch, then finds emit refusing it after Stop
// (output full, or Stop seen first): the value is neither delivered nor left
// in ch. FromChan's doc promises values not emitted stay in ch, "not lost".
// Found by the Stop-loses-nothing tests; happens on every run below.
func TestRegression_FromChan_StopLosesTheItemInHand(t *testing.T) {
	const n = 100
	ch := make(chan int, n)
	for i := range n {
		ch <- i
	}
	close(ch)
	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(0))
	got := 0
	for range pipeline.All(p, pipeline.FromChan(p, ch)) {
		got++
		if got == 10 {
			p.Stop()
		}
	}
	require.NoError(t, p.Wait())
	assert.Equal(t, n, got+len(ch), "every value is delivered or still in ch (delivered %d, left %d)", got, len(ch))
}

// Batch allocates a slice of capacity size for every batch (batch.go, add):
// a large size with a maxWait — "flush every second, at most a million" — costs
// size × sizeof(T) per batch however few items arrive; 1<<40 kills the
// process with a fatal "out of memory" that no recover can catch, and
// math.MaxInt fails the pipeline with a makeslice panic. Bounded memory says
// a batch should cost what it holds. The crash runs in a child process.
func TestRegression_Batch_HugeSizeCrashesTheProcess(t *testing.T) {
	if size := os.Getenv("REL_BATCH_SIZE"); size != "" {
		n := map[string]int{"maxint": math.MaxInt, "1<<40": 1 << 40}[size]
		p := pipeline.New(context.Background())
		got, err := pipeline.Collect(p, pipeline.Batch(p, pipeline.Generate(p, 1, 2), n, time.Millisecond))
		if err != nil || len(got) != 1 || len(got[0]) != 2 {
			t.Fatalf("got %v, %v; want [[1 2]], nil", got, err)
		}
		return
	}
	for _, size := range []string{"maxint", "1<<40"} {
		t.Run(size, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRegression_Batch_HugeSizeCrashesTheProcess$", "-test.v")
			cmd.Env = append(os.Environ(), "REL_BATCH_SIZE="+size)
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "Batch(size %s) in a child process:\n%s", size, relFirstBytes(out, 1500))
		})
	}
}

func relFirstBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// relShutdownDuringReduce runs Reduce over three buffered items; while it
// folds the first, another goroutine calls Shutdown (which may return at once,
// since Generate's goroutine has ended, or wait for the sink), and the second
// panics. It returns Reduce's error, Shutdown's and Wait's afterwards.
func relShutdownDuringReduce(t *testing.T) (reduceErr, shutdownErr, waitErr error) {
	p := pipeline.New(context.Background())
	in := pipeline.Generate(p, 1, 2, 3) // all three fit in the output buffer
	shut := make(chan error, 1)
	_, reduceErr = pipeline.Reduce(p, in, 0, func(acc, v int) int {
		switch v {
		case 1:
			go func() { shut <- p.Shutdown(context.Background()) }()
			select { // give Shutdown the chance to return before the panic
			case err := <-shut:
				shut <- err
			case <-time.After(100 * time.Millisecond):
			}
		case 2:
			panic("boom")
		}
		return acc + v
	})
	return reduceErr, <-shut, p.Wait()
}

// Reduce runs fn on the caller's goroutine, which Wait does not count: a
// Shutdown (or any Wait) from elsewhere can finish the pipeline while Reduce
// still folds buffered items. fail then ignored errors once Wait had returned,
// so a later panic in fn was dropped and Reduce returned nil ("panics become
// errors"). Found by the chaos run (Reduce sink, Shutdown action).
func TestRegression_Reduce_PanicAfterShutdownIsLost(t *testing.T) {
	reduceErr, _, _ := relShutdownDuringReduce(t)
	var pe *pipeline.PanicError
	assert.ErrorAs(t, reduceErr, &pe, "the panic in Reduce's fn must be reported")
}

// The same run: Shutdown used to return nil as soon as the stage goroutines
// had ended, then the Reduce sink panicked and the pipeline's result became
// that panic. A sink on the caller's goroutine now counts as running until it
// returns, so Shutdown and Wait report its failure. Found by the chaos run
// (PIPELINE_SOAK=20000, run 11108).
func TestRegression_Reduce_ShutdownReportsSuccessThenTheSinkFails(t *testing.T) {
	reduceErr, shutdownErr, waitErr := relShutdownDuringReduce(t)
	var pe *pipeline.PanicError
	require.ErrorAs(t, reduceErr, &pe)
	assert.Equal(t, reduceErr, shutdownErr, "Shutdown reports the pipeline's result")
	assert.Equal(t, reduceErr, waitErr)
}
