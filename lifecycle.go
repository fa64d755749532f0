package pipeline

// This file holds how a pipeline ends, as its users drive it: Stop (drain),
// Shutdown (drain with a deadline, then cancel), Wait (the end, and its
// result) and the Finally hooks that run at the end. The states these move
// the pipeline through are laid out at the top of pipeline.go.

import "context"

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
// returns the same result. Once Wait has returned, the pipeline's context is
// done and stages built afterwards fail with [ErrInvalidArgument].
// Wait does not read any stage's output: a pipeline whose last output nobody
// reads ends only when its context is cancelled. Never call Wait (or
// Shutdown without a deadline) from inside a sink's function or an All loop
// body: it would wait for itself. Call Stop there.
func (p *Pipeline) Wait() error {
	if p == nil {
		return errNilPipeline()
	}
	for {
		p.mu.Lock()
		switch {
		case p.ended:
			err := p.err
			p.mu.Unlock()
			return err
		case !p.ending && p.running == 0 && p.sinks == 0:
			p.ending = true
			hooks := p.finally
			p.finally = nil
			p.mu.Unlock()
			p.end(hooks)
			continue
		}
		idle := p.idleCh()
		p.mu.Unlock()
		<-idle
	}
}

// end runs the Finally hooks, fixes the result and wakes every Wait.
func (p *Pipeline) end(hooks []func(error) error) {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	for _, h := range hooks {
		if herr := runHook(h, err); herr != nil && err == nil {
			err = herr
		}
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.ended = true
	p.wakeWaiters()
	p.mu.Unlock()
	p.cancel(context.Canceled)
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
	if !p.ending {
		p.finally = append(p.finally, fn)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = runHook(fn, p.Wait())
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
	close(p.stopCh)
	p.mu.Lock()
	cancels := p.onStop
	p.onStop = nil
	p.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// Shutdown calls [Pipeline.Stop], then waits for the pipeline (its sink
// included) and returns its result as [Pipeline.Wait] does. If ctx ends
// first, it cancels the pipeline (with ctx's cause, which becomes the
// pipeline's failure if a stage was still running), waits for every stage
// goroutine to return, and returns ctx.Err().
func (p *Pipeline) Shutdown(ctx context.Context) error {
	if p == nil {
		return errNilPipeline()
	}
	if ctx == nil {
		return errArg("Shutdown", "nil context")
	}
	p.Stop()
	if p.quiet(true, ctx.Done()) {
		return p.Wait()
	}
	p.cancelRunning(context.Cause(ctx))
	p.quiet(false, nil)
	return ctx.Err()
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
