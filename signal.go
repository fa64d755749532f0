package pipeline

// This file holds StopOnSignal: Ctrl-C that drains (the first signal stops
// the pipeline, a second cancels it).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ErrSignal is wrapped by the cause with which [StopOnSignal] cancels a
// pipeline on a second signal; the cause's message names the signal, e.g.
// "pipeline: cancelled by a second signal: interrupt".
var ErrSignal = errors.New("pipeline: cancelled by a second signal")

// StopOnSignal makes signals end p the way a user pressing Ctrl-C expects:
// the first one received calls [Pipeline.Stop], so that sources stop and
// every item already emitted is still handled (and Wait returns nil); a
// second one cancels p, a hard stop, with a cause wrapping [ErrSignal] that
// Wait returns; and a third gets the signal's default behaviour back (for
// Ctrl-C, the process ends), in case the cancelled program still hangs.
// Without signals it listens for os.Interrupt and syscall.SIGTERM.
//
// The signals are caught from the moment StopOnSignal returns until p's
// context is done (p has ended, failed or been cancelled, see
// [Pipeline.Context]) or stop is called, whichever comes first; then they are
// let go (signal.Stop) and the goroutine that watched them has returned.
// Call stop when the program no longer wants the signals caught, typically
// deferred; it may be called many times, and returns once that goroutine has
// (after a second signal, once the cancelled stages have returned).
//
// A nil p catches nothing. A nil signal fails p with [ErrInvalidArgument]
// and catches nothing.
func StopOnSignal(p *Pipeline, signals ...os.Signal) (stop func()) {
	if p == nil {
		return func() {}
	}
	for _, s := range signals {
		if s == nil {
			p.fail(errArg("StopOnSignal", "nil signal"))
			return func() {}
		}
	}
	if len(signals) == 0 {
		signals = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	caught := make(chan os.Signal, 2) // room for a quick double Ctrl-C
	signal.Notify(caught, signals...)
	released := make(chan struct{})
	exited := make(chan struct{})
	ended := p.Context().Done()
	go func() {
		defer close(exited)
		defer signal.Stop(caught)
		select {
		case <-caught:
			p.Stop()
		case <-ended:
			return
		case <-released:
			return
		}
		select {
		case sig := <-caught:
			signal.Stop(caught) // a third signal has its default effect
			cancelWith(p, fmt.Errorf("%w: %v", ErrSignal, sig))
		case <-ended:
		case <-released:
		}
	}()
	return sync.OnceFunc(func() {
		close(released)
		<-exited
	})
}

// cancelWith cancels p with cause, by way of Shutdown with a context that
// has already ended: the cause becomes p's failure if a stage was still
// running. It returns once every stage goroutine has.
func cancelWith(p *Pipeline, cause error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	_ = p.Shutdown(ctx)
}
