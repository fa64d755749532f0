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

// A FlatMap call holds its Limiter slot while emit blocks on a full output;
// a downstream stage sharing the limiter then waits for that slot forever
// and never reads: deadlock (design invariant 6: no deadlock for any input).
// Found by TestProperty_Limiter_BoundsCallsAcrossStagesAndPipelines (it hung).
func TestRegression_FlatMapWithSharedLimiter_Deadlocks(t *testing.T) {
	lim := pipeline.NewLimiter(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := pipeline.New(ctx, pipeline.DefaultBuffer(0))
	fm := pipeline.FlatMap(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int, emit func(int) error) error {
		for j := range 3 {
			if err := emit(v*10 + j); err != nil {
				return err
			}
		}
		return nil
	}, pipeline.Limit(lim))
	out := pipeline.FanOut(p, fm, 1, func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Limit(lim))
	got, err := pipeline.Collect(p, out)
	require.NoError(t, err, "only the 5 s safety deadline ends it")
	assert.Len(t, got, 9)
}

// Sizes and counts too large to allocate panic on the caller's goroutine
// (makechan/makeslice: size out of range) instead of returning an error
// wrapping ErrInvalidArgument (or working): "never a panic".
func TestRegression_HugeSizes_PanicOnTheCaller(t *testing.T) {
	ok := func(_ context.Context, v int) (int, error) { return v, nil }
	cases := map[string]func(p *pipeline.Pipeline, in <-chan int) <-chan int{
		"Buffer(MaxInt)":     func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.Buffer(p, in, math.MaxInt) },
		"DropOnFull(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.DropOnFull(p, in, math.MaxInt) },
		"BufferSize(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOut(p, in, 1, ok, pipeline.BufferSize(math.MaxInt))
		},
		"FanOut workers MaxInt": func(p *pipeline.Pipeline, in <-chan int) <-chan int { return pipeline.FanOut(p, in, math.MaxInt, ok) },
		"FanOutOrdered workers MaxInt": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.FanOutOrdered(p, in, math.MaxInt, ok)
		},
		"Tee(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Merge(p, pipeline.Tee(p, in, math.MaxInt)...)
		},
		"Partition(MaxInt)": func(p *pipeline.Pipeline, in <-chan int) <-chan int {
			return pipeline.Merge(p, pipeline.Partition(p, in, math.MaxInt, func(int) int { return 0 })...)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			var out <-chan int
			require.NotPanics(t, func() { out = build(p, pipeline.Generate(p, 1)) })
			_, err := pipeline.Collect(p, out)
			if err != nil {
				assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			}
		})
	}
	t.Run("DefaultBuffer(MaxInt)", func(t *testing.T) {
		require.NotPanics(t, func() {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(math.MaxInt))
			_, err := pipeline.Collect(p, pipeline.Generate(p, 1))
			if err != nil {
				assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			}
		})
	})
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

// A stage whose function panicked reports Busy = 1 forever: In was counted,
// the call never was (engine.go, runWorkers/runOrdered count "called" only
// after the step returns). Stats after Wait should show nothing running.
func TestRegression_Stats_BusyAfterWaitWhenFnPanicked(t *testing.T) {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, v int) (int, error) {
		if v == 2 {
			panic("boom")
		}
		return v, nil
	})
	_, err := pipeline.Collect(p, out)
	require.Error(t, err)
	for _, s := range p.Stats() {
		assert.Zerof(t, s.Busy, "stage %s is busy after Wait", s.Name)
	}
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

// Shutdown whose context ends while (or after) the pipeline finishes
// recorded ctx's cause even though Wait had already returned nil: later Wait
// calls returned it, breaking "each call returns the same result". Found by
// the chaos run (action "shutdown").
func TestRegression_Shutdown_EndedContextAfterFinishChangesWaitResult(t *testing.T) {
	for range 50 {
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // already over: Shutdown's select may pick it over the finished Wait
		_ = p.Shutdown(ctx)
		require.NoError(t, p.Wait(), "Wait returned nil before; it must keep returning nil")
	}
}
