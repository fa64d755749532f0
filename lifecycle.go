package pipeline

// This file holds how a pipeline ends, as its users drive it: Stop (drain),
// Shutdown (drain with a deadline, then cancel), Wait (the end, and its
// result) and the Finally hooks that run at the end. The states these move
// the pipeline through are laid out at the top of pipeline.go.

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Wait blocks until every goroutine of every stage has returned, and every
// sink running on another goroutine ([Collect], [Reduce], [First], [Drain],
// a range over [All]) has returned too, then returns
// nil if nothing was lost: every source ran to its end or was stopped by
// [Pipeline.Stop], and every item was delivered, or deliberately dropped or
// skipped and counted in [Pipeline.Stats]. Otherwise it returns the first
// failure: a [*StageError], the parent context's cause, or an error wrapping
// [ErrInvalidArgument]. An early exit of a sink ([First], a broken range over
// [All]) is not a failure.
//
// Wait is safe to call from many goroutines and may be called again; each call
// returns the same result, with one exception: a stage built once the
// pipeline has ended is a misuse, refused with [ErrInvalidArgument], and
// every later call reports it (a stage built while Wait is ending the
// pipeline either runs, and Wait waits for it, or is refused, and that Wait
// reports it). Once Wait has returned, the pipeline's context is done. A
// sink may still be built afterwards to read what the stages left in their
// outputs.
//
// Wait does not read any stage's output. Items a stage sent into its
// output's buffer are not lost when nobody has read them yet: once every
// stage has returned, Wait returns nil and the items stay readable from the
// channel. A stage blocked on a full output that nobody reads keeps Wait
// waiting until the pipeline is cancelled ([StageStats].Unread marks such an
// output). Never call Wait (or Shutdown without a deadline) from inside a
// sink's function or an All loop body: it would wait for itself. Call Stop
// there.
func (p *Pipeline) Wait() error {
	if p == nil {
		return errNilPipeline()
	}
	p.seal()
	for {
		p.mu.Lock()
		switch {
		case p.ended:
			err := p.err
			p.mu.Unlock()
			return err
		case !p.ending && p.running == 0 && p.sinks == 0:
			p.ending = true
			p.mu.Unlock()
			p.end()
			continue
		}
		idle := p.idleCh()
		p.mu.Unlock()
		<-idle
	}
}

// end runs the Finally hooks, fixes the result and wakes every Wait. The
// result is fixed even if a hook calls runtime.Goexit (which ends the
// goroutine of this Wait: the others still return).
func (p *Pipeline) end() {
	p.mu.Lock()
	p.err = p.withCollected(p.err)
	err := p.err
	p.mu.Unlock()
	returned := false
	defer func() {
		if !returned && err == nil {
			err = &StageError{Stage: "finally", Err: ErrGoexit}
		}
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.ended = true
		p.wakeWaiters()
		p.mu.Unlock()
		p.cancel(context.Canceled)
	}()
	for {
		p.mu.Lock()
		hooks := p.finally
		p.finally = nil
		p.mu.Unlock()
		if len(hooks) == 0 {
			break
		}
		for _, h := range hooks {
			if herr := runHook(h, err); herr != nil && err == nil {
				err = herr
			}
		}
	}
	returned = true
}

// runHook calls a Finally hook; a panic in it is its error.
func runHook(h func(error) error, result error) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = &StageError{Stage: "finally", Err: panicError(x)}
		}
	}()
	return h(result)
}

// Finally registers fn to run once, when the pipeline ends: after every
// goroutine of its stages and every sink has returned, before [Pipeline.Wait]
// (or the sink that calls it) returns to anyone. fn is given the pipeline's
// result so far, nil or the first failure; if that was nil, an error fn
// returns becomes the result (it never replaces an earlier failure). Hooks run
// in the order they were registered, on the goroutine of the first Wait to
// see the end; a panic in one becomes its error.
//
// Finally is for adapters that must settle what their stages left behind (a
// message source that hands unacknowledged messages back, say) and report it
// as the pipeline's result. On a pipeline that has already ended, fn is
// called at once with the result and what it returns is ignored: each Wait
// returns the same result. A nil fn is ignored.
func (p *Pipeline) Finally(fn func(result error) error) {
	if p == nil || fn == nil {
		return
	}
	p.mu.Lock()
	if !p.ended { // a hook may register another: end runs it too
		p.finally = append(p.finally, fn)
		p.mu.Unlock()
		return
	}
	err := p.err
	p.mu.Unlock()
	_ = runHook(fn, err)
}

// Stop ends the pipeline gracefully: sources stop emitting (their emit returns
// [ErrStopped] and the context handed to a [Produce] function is cancelled) and
// close their outputs; every other stage goes on until its input closes, so
// every item already emitted reaches the sink and [Batch] flushes its partial
// batch. Stop does not block and may be called many times. Follow it with
// [Pipeline.Wait] or a sink, or use [Pipeline.Shutdown].
func (p *Pipeline) Stop() {
	if p == nil || p.stopped.Swap(true) {
		return
	}
	p.mu.Lock()
	if p.stopCh != nil {
		close(p.stopCh)
	}
	p.closed = true
	cancels := p.onStop
	p.onStop = nil
	p.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// stopChan returns the channel Stop closes. It is made at the first ask:
// most pipelines never need it.
func (p *Pipeline) stopChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopChLocked()
}

// stopChLocked is stopChan with p.mu held.
func (p *Pipeline) stopChLocked() <-chan struct{} {
	if p.stopCh == nil {
		p.stopCh = make(chan struct{})
		if p.closed {
			close(p.stopCh)
		}
	}
	return p.stopCh
}

// Shutdown calls [Pipeline.Stop], then waits for the pipeline (its sink
// included) and returns its result as [Pipeline.Wait] does. If ctx ends
// first, it cancels the pipeline (with ctx's cause, which becomes the
// pipeline's failure if a stage was still running), waits for every stage
// goroutine to return, and returns a [*ShutdownError]: it wraps ctx.Err()
// and names the stages that were still running when ctx ended, with what
// held each up (a full output nobody reads, a Limiter slot, a user call).
//
// Called from one of the pipeline's own goroutines (a stage's function, a
// source's function), Shutdown cannot wait: the stages after the caller wait
// for it, and the pipeline cannot end before the function returns. There it
// stops the pipeline, returns nil at once, and cancels the pipeline if it has
// not ended by ctx's deadline ([Pipeline.Wait] then reports
// context.DeadlineExceeded); a ctx cancelled before its deadline (by a
// deferred cancel, say) changes nothing once Shutdown has returned. From a
// sink's loop body (a range over [All], a [Reduce] function) call
// [Pipeline.Stop] instead: Shutdown there waits for ctx to end.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	if p == nil {
		return errNilPipeline()
	}
	if ctx == nil {
		return errArg("Shutdown", "nil context")
	}
	p.Stop()
	p.seal()
	if onStageGoroutine() {
		if deadline, ok := ctx.Deadline(); ok {
			t := time.AfterFunc(time.Until(deadline), func() { p.cancelRunning(context.DeadlineExceeded) })
			p.Finally(func(error) error { t.Stop(); return nil })
		}
		return nil
	}
	if p.quiet(true, ctx.Done()) {
		return p.Wait()
	}
	running := p.stillRunning()
	p.cancelRunning(context.Cause(ctx))
	p.quiet(false, nil)
	return &ShutdownError{Err: ctx.Err(), Running: running}
}

// onStageGoroutine reports whether the caller runs on a goroutine that a
// pipeline started for a stage (the one frame every such goroutine was
// created by). Only Shutdown asks, once.
func onStageGoroutine() bool {
	buf := make([]byte, 16<<10)
	for {
		n := runtime.Stack(buf, false)
		if n < len(buf) {
			return bytes.Contains(buf[:n], []byte("\ncreated by github.com/ec0f1147/pipeline.goWorker "))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// stillRunning describes each stage that has a goroutine alive, and what
// holds it up, from its Stats.
func (p *Pipeline) stillRunning() []string {
	stages, stats := p.view()
	var out []string
	for i, s := range stages {
		if s.live.Load() == 0 {
			continue
		}
		st := stats[i]
		var why []string
		if st.Unread > 0 {
			why = append(why, "its output is read by no stage or sink")
		} else if st.QueueCap > 0 && st.QueueLen == st.QueueCap {
			why = append(why, fmt.Sprintf("sending to a full output (%d/%d)", st.QueueLen, st.QueueCap))
		}
		if l := s.limiter; l != nil && l.Waiting() > 0 {
			why = append(why, fmt.Sprintf("waiting for a Limiter slot (%d of %d in use)", l.InUse(), l.Limit()))
		}
		if st.Busy > 0 {
			why = append(why, fmt.Sprintf("in a user call (%d of %d workers)", st.Busy, st.Workers))
		}
		if len(why) == 0 && s.source {
			why = append(why, "in its source function")
		} else if len(why) == 0 {
			why = append(why, "waiting for input")
		}
		out = append(out, s.name+": "+strings.Join(why, ", "))
	}
	return out
}

// quiet waits until no stage goroutine is left and, if withSinks, no sink
// either, or until done is closed; it reports which.
func (p *Pipeline) quiet(withSinks bool, done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		if p.running == 0 && (!withSinks || p.sinks == 0) {
			p.mu.Unlock()
			return true
		}
		idle := p.idleCh()
		p.mu.Unlock()
		select {
		case <-idle:
		case <-done:
			return false
		}
	}
}
