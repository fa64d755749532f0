//go:build unix

package pipeline_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
)

// StopOnSignal is tested with real signals sent to the test process. A
// signal is only ever sent while something has registered for it (the
// helper under test, or the test itself). Most tests use SIGUSR1, which a Go
// program ignores when nobody has registered for it; SIGINT and SIGTERM,
// which end it, are sent only to check the defaults. The default behaviour
// after the helper lets go is checked in a child process, with SIGTERM.

// sigBound is how long a signal test may take.
const sigBound = 10 * time.Second

// sigSend sends sig to this process.
func sigSend(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(os.Getpid(), sig))
}

// sigEndless is a source emitting 0, 1, 2, … until it is stopped; emitted
// counts the items emit accepted, and ended is closed when its function
// has returned.
func sigEndless(p *pipeline.Pipeline, emitted *atomic.Int64, ended chan<- struct{}) <-chan int {
	return pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		defer close(ended)
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
			emitted.Add(1)
		}
	})
}

func TestStopOnSignal(t *testing.T) {
	t.Run("the first signal stops gracefully and nothing emitted is lost", func(t *testing.T) {
		guard(t, func() {
			p := pipeline.New(context.Background())
			var emitted atomic.Int64
			src := sigEndless(p, &emitted, make(chan struct{}))
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1)
			defer stop()
			n := 0
			for v := range src {
				require.Equal(t, n, v)
				if n++; n == 100 {
					sigSend(t, syscall.SIGUSR1)
				}
			}
			require.NoError(t, p.Wait())
			assert.GreaterOrEqual(t, n, 100)
			assert.Equal(t, int64(n), emitted.Load(), "every item emitted reached the sink")
		})
	})

	t.Run("a second signal cancels with a cause naming the signal", func(t *testing.T) {
		guard(t, func() {
			p := pipeline.New(context.Background())
			var emitted atomic.Int64
			srcEnded := make(chan struct{})
			blocked := make(chan struct{})
			out := pipeline.FanOut(p, sigEndless(p, &emitted, srcEnded), 1, func(ctx context.Context, v int) (int, error) {
				if v == 5 {
					close(blocked)
					<-ctx.Done() // a call Stop cannot end
					return 0, ctx.Err()
				}
				return v, nil
			})
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1)
			defer stop()
			result := make(chan error, 1)
			go func() { result <- pipeline.Drain(p, out) }()

			<-blocked
			sigSend(t, syscall.SIGUSR1)
			<-srcEnded // the first signal stopped the source…
			select {
			case err := <-result:
				t.Fatalf("the pipeline ended on the first signal: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			sigSend(t, syscall.SIGUSR1) // …the second cancels the call that ignores Stop
			err := <-result
			require.ErrorIs(t, err, pipeline.ErrSignal)
			assert.Equal(t, "pipeline: cancelled by a second signal: user defined signal 1", err.Error())
			assert.Equal(t, err, p.Wait())
			assert.ErrorIs(t, context.Cause(p.Context()), pipeline.ErrSignal)
		})
	})

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("without signals it listens for "+sig.String(), func(t *testing.T) {
			guard(t, func() {
				p := pipeline.New(context.Background())
				var emitted atomic.Int64
				src := sigEndless(p, &emitted, make(chan struct{}))
				stop := pipeline.StopOnSignal(p)
				defer stop()
				n := 0
				for range src {
					if n++; n == 10 {
						sigSend(t, sig)
					}
				}
				require.NoError(t, p.Wait())
				assert.Equal(t, int64(n), emitted.Load())
			})
		})
	}

	t.Run("stop lets the signals go and leaves no goroutine", func(t *testing.T) {
		guard(t, func() {
			p := pipeline.New(context.Background())
			var emitted atomic.Int64
			src := sigEndless(p, &emitted, make(chan struct{}))
			before := goleak.IgnoreCurrent()
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1)
			stop()
			stop() // idempotent
			require.NoError(t, goleak.Find(before), "the watcher has returned when stop does")

			own := make(chan os.Signal, 1)
			signal.Notify(own, syscall.SIGUSR1)
			defer signal.Stop(own)
			sigSend(t, syscall.SIGUSR1)
			<-own
			time.Sleep(20 * time.Millisecond) // time for a stray watcher to call Stop
			for range 10 * pipeline.DefaultBufferSize {
				_, ok := <-src
				require.True(t, ok, "the signal after stop did not stop the pipeline")
			}
			p.Stop()
			require.NoError(t, pipeline.Drain(p, src))
		})
	})

	t.Run("once the pipeline has ended its watcher is gone without stop", func(t *testing.T) {
		guard(t, func() {
			before := goleak.IgnoreCurrent()
			p := pipeline.New(context.Background())
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1)
			require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
			require.NoError(t, goleak.Find(before))
			stop()
		})
	})

	t.Run("a failed pipeline ends its watcher, and a signal then changes nothing", func(t *testing.T) {
		guard(t, func() {
			before := goleak.IgnoreCurrent()
			boom := errors.New("boom")
			p := pipeline.New(context.Background())
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1)
			defer stop()
			err := pipeline.ForEach(p, pipeline.Generate(p, 1), 1, func(context.Context, int) error { return boom })
			require.ErrorIs(t, err, boom)
			require.NoError(t, goleak.Find(before))
		})
	})

	t.Run("a pipeline already ended catches nothing", func(t *testing.T) {
		guard(t, func() {
			p := pipeline.New(context.Background())
			require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1)))
			before := goleak.IgnoreCurrent()
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1)
			require.NoError(t, goleak.Find(before))
			stop()
			assert.NoError(t, p.Wait())
		})
	})

	t.Run("a nil signal is an invalid argument and a nil pipeline a no-op", func(t *testing.T) {
		guard(t, func() {
			before := goleak.IgnoreCurrent()
			p := pipeline.New(context.Background())
			stop := pipeline.StopOnSignal(p, syscall.SIGUSR1, nil)
			require.NoError(t, goleak.Find(before), "nothing is watched")
			stop()
			err := pipeline.Drain(p, pipeline.Generate(p, 1))
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			assert.Contains(t, err.Error(), "StopOnSignal: nil signal")

			pipeline.StopOnSignal(nil)()
			require.NoError(t, goleak.Find(before))
		})
	})
}

// A child process started by TestStopOnSignal_LetsGo runs sigChild
// instead of the tests, as PIPELINE_SIGNAL_CHILD says, and exits.
func init() {
	if mode := os.Getenv("PIPELINE_SIGNAL_CHILD"); mode != "" {
		sigChild(mode)
		fmt.Println("still alive")
		os.Exit(0)
	}
}

func sigChild(mode string) {
	p := pipeline.New(context.Background())
	switch mode {
	case "hung":
		// A call that ignores its context: even cancelled, the pipeline
		// cannot end, and only the third signal can end the process.
		out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(context.Context, int) (int, error) {
			select {}
		})
		pipeline.StopOnSignal(p, syscall.SIGTERM)
		go func() {
			<-p.Context().Done()
			fmt.Println("cancelled")
		}()
		fmt.Println("ready")
		_ = pipeline.Drain(p, out)
	case "ended":
		pipeline.StopOnSignal(p, syscall.SIGTERM)
		if err := pipeline.Drain(p, pipeline.Generate(p, 1)); err != nil {
			fmt.Println(err)
			return
		}
		// The watcher lets go of the signal once it sees the end; until then
		// a signal is caught, so send until one ends the process.
		for range 500 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestStopOnSignal_LetsGo(t *testing.T) {
	child := func(t *testing.T, mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "PIPELINE_SIGNAL_CHILD="+mode)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// A child that outlives the test's bound is killed, so a failing
		// test leaves no process behind and its reads and Wait return.
		timer := time.AfterFunc(sigBound, func() { _ = cmd.Process.Kill() })
		t.Cleanup(func() {
			if timer.Stop() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd, bufio.NewScanner(stdout)
	}
	expectLine := func(t *testing.T, out *bufio.Scanner, want string) {
		t.Helper()
		for out.Scan() {
			if strings.TrimSpace(out.Text()) == want {
				return
			}
		}
		t.Fatalf("the child never printed %q", want)
	}
	killedBy := func(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) {
		t.Helper()
		err := cmd.Wait()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "the child should have been ended by %v", sig)
		status, ok := exit.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		assert.True(t, status.Signaled(), "ended by a signal, not by exiting: %v", err)
		assert.Equal(t, sig, status.Signal())
	}

	t.Run("a third signal has its default effect", func(t *testing.T) {
		cmd, out := child(t, "hung")
		expectLine(t, out, "ready")
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM)) // Stop: the call goes on
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM)) // cancel: the call ignores it
		expectLine(t, out, "cancelled")
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM)) // the default: the process ends
		killedBy(t, cmd, syscall.SIGTERM)
	})

	t.Run("after the pipeline has ended the signal is let go", func(t *testing.T) {
		cmd, out := child(t, "ended")
		for out.Scan() { // read to the end, so that Wait can finish
		}
		killedBy(t, cmd, syscall.SIGTERM)
	})
}
