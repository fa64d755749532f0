package pipeline

// This file is the one way to build a stage. A constructor describes its
// stage once, in a spec (kind, workers, outputs, options it accepts, its own
// argument problem) and hands it to build with its options, its inputs and
// the function that starts its goroutines. build registers the stage, makes
// its outputs, adopts its inputs, and either starts the goroutines or, if an
// argument is bad, closes the outputs and fails the pipeline with the reason.
// The ways a started stage runs its goroutines are in workers.go.

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// spec is what a stage constructor says about its stage.
type spec struct {
	kind    string
	workers int    // goroutines the stage runs, and counters it keeps
	outs    int    // outputs: 1 for most stages, n for Tee and Partition, 0 for a sink
	allowed optBit // the options it accepts
	source  bool   // it takes no input
	calls   bool   // each item is a call of a user function: Busy counts them
	pool    bool   // its workers take items from one input in any order: a source feeding it may spill (see attachSpill)
	bad     string // a problem with the constructor's own arguments; "" if none
	// held reports a keyed stage's calls running and what it holds, for
	// Stats; nil for other stages
	held func() (busy, pending, keys int)
}

// node is a built stage, as its goroutines see it.
type node[T, R any] struct {
	s    stage
	p    *Pipeline
	cfg  *stageConfig
	in   inlet[T]   // the input; Merge's first
	ins  []inlet[T] // every input
	out  chan R     // the output; Tee's and Partition's first; nil for a sink
	outs []chan R   // every output

	oneIn  [1]inlet[T] // ins' storage for a one-input stage
	oneOut [1]chan R   // outs' storage for a one-output stage
	oneRef [1]*channelRef
	inRef  [1]*channelRef
	upRef  [1]*stage
	ref    channelRef // the record of a one-output stage's output

	c       caller[T, R]             // the caller of the user function, for a stage that has one (see newCaller)
	spill   atomic.Pointer[spill[R]] // a source's: its output's extension (see attachSpill)
	left    atomic.Int32             // goroutines of the stage still running: the last closes the outputs
	oneEach [1]eachJob[T]            // the job of a one-worker stage run by each
}

// outRefs returns k new records for the stage's outputs.
func (n *node[T, R]) outRefs(k int) []*channelRef {
	if k == 1 {
		n.oneRef[0] = &n.ref
		return n.oneRef[:]
	}
	refs := make([]*channelRef, k)
	for i := range refs {
		refs[i] = new(channelRef)
	}
	return refs
}

// callSpec describes a stage that calls a user function fn on workers
// goroutines and sends what it returns.
func callSpec(kind string, workers int, nilFn bool) spec {
	return spec{kind: kind, workers: workers, outs: 1, allowed: optsCall, calls: true, pool: true,
		bad: firstProblem(inRange("workers", workers), mustNotBeNil(nilFn, "fn"))}
}

// inRange is the argument problem of a count (of workers, of outputs) that
// must be in [1, maxWorkers], or "".
func inRange(what string, n int) string {
	if n < 1 || n > maxWorkers {
		return fmt.Sprintf("%s = %d, must be in [1, %d]", what, n, maxWorkers)
	}
	return ""
}

// firstProblem returns the first non-empty argument problem, or "".
func firstProblem(problems ...string) string {
	for _, p := range problems {
		if p != "" {
			return p
		}
	}
	return ""
}

// build builds a stage from sp, opts and its inputs, and calls start to
// start its goroutines if nothing is wrong. Otherwise the stage's outputs are
// closed (none is made if their number is out of range) and the pipeline
// fails with the error (a nil pipeline has nothing to fail). The argument
// problems are checked in this order: a pipeline that has ended, the
// options, the constructor's own problem, a nil input.
func build[T, R any](p *Pipeline, sp spec, opts []StageOption, start func(n *node[T, R]), ins ...<-chan T) *node[T, R] {
	n := &node[T, R]{p: p, cfg: configure(opts)}
	outs := sp.outs
	if sp.bad != "" && (outs < 0 || outs > maxWorkers) {
		outs = 0 // a refused count allocates nothing
	}
	if p == nil {
		n.makeOutputs(outs, 0)
		closeAll(n.outs)
		return n
	}
	buf := n.cfg.buf
	if buf < 0 {
		buf = outputBuffer[R](p, sp.workers, sp.bad != "")
	}
	problem := n.makeOutputs(outs, buf)
	workers := sp.workers
	if sp.bad != "" || workers < 1 || workers > maxWorkers {
		workers = 1 // the counters of a stage that does not start
	}
	s := &n.s
	s.kind, s.workers, s.source, s.calls, s.held = sp.kind, sp.workers, sp.source, sp.calls, sp.held
	if workers == 1 {
		s.ctr = s.one[:]
	} else {
		s.ctr = make([]counters, workers)
	}
	if len(n.outs) > 0 {
		s.queue = n
	}
	if len(ins) == 1 {
		n.ins = n.oneIn[:]
	} else {
		n.ins = make([]inlet[T], len(ins))
	}

	// Register the stage, its outputs and its inputs, in one step, so that
	// Stats and Diagram see it whole; and hold the pipeline open until its
	// goroutines are started, so that a Wait returning meanwhile cannot
	// leave the stage neither run nor failed.
	s.limiter, s.breaker = n.cfg.limiter, n.cfg.breaker
	if len(ins) == 1 {
		s.ins, s.inputs = n.inRef[:0], n.upRef[:0]
	}
	p.mu.Lock()
	held := p.hold()
	nilIn := -1
	for i, in := range ins {
		if in == nil {
			if nilIn < 0 {
				nilIn = i
			}
			continue
		}
		var ref *channelRef
		n.ins[i], ref = adopt(p, in)
		if ref.maker != nil {
			s.inputs = append(s.inputs, ref.maker)
		}
		s.ins = append(s.ins, ref)
	}
	s.index = len(p.stages) + 1
	s.name = n.cfg.name
	if s.name == "" {
		s.name = defaultName(sp.kind, s.index)
	}
	s.outs = n.outRefs(len(n.outs))
	for i, o := range n.outs {
		s.outs[i].maker = s
		p.chans.put((<-chan R)(o), s.outs[i])
	}
	p.stages = append(p.stages, s)
	p.mu.Unlock()
	if held {
		defer p.release()
	}
	if len(n.ins) > 0 {
		n.in = n.ins[0]
	}

	switch {
	case !held:
		problem = "pipeline used after Wait returned"
	case n.cfg.problem(sp.kind, sp.allowed) != "":
		problem = n.cfg.problem(sp.kind, sp.allowed)
	case problem != "":
	case sp.bad != "":
		problem = sp.bad
	case nilIn >= 0 && len(ins) > 1:
		problem = fmt.Sprintf("input %d must not be nil", nilIn)
	case nilIn >= 0:
		problem = "input channel must not be nil"
	case n.cfg.dead != nil && !n.cfg.dead.accepts(p, (*T)(nil)):
		problem = "DeadLetters.Option: the dead letters are of another pipeline, or their item type is not the stage's input type"
	case n.cfg.dead != nil && !n.cfg.dead.join(): // last: it counts the stage as a feeder
		problem = "DeadLetters.Option: the dead letters are closed (the pipeline was sealed and every stage feeding them has ended)"
	case n.cfg.dead != nil:
		s.feeds = n.cfg.dead
		s.pending.Store(int32(len(s.ctr)))
	}
	if problem != "" {
		p.refuse(s.name, problem)
		closeAll(n.outs)
		return n
	}
	if start != nil {
		// A stage that starts and whose workers outnumber its input's slots
		// extends its source's output (see attachSpill).
		if sp.pool && len(s.ins) == 1 && !n.in.foreign() && p.track == nil && workers > cap(n.in.ch) {
			n.in.spill = attachSpill[T](s.ins[0].maker, workers)
		}
		start(n)
	}
	return n
}

// adopt records in as read by one more stage or sink, and returns how to
// read it: plainly if the pipeline made it, as FromChan would if not. p.mu
// is held.
func adopt[T any](p *Pipeline, in <-chan T) (inlet[T], *channelRef) {
	ref := p.chans.get(in)
	if ref == nil {
		ref = &channelRef{} // made outside the pipeline
		p.chans.put(in, ref)
	}
	ref.readers.Add(1)
	if ref.maker == nil {
		return inlet[T]{ch: in, stop: p.stopChLocked()}, ref
	}
	return inlet[T]{ch: in}, ref
}

// refuse fails the pipeline with the argument problem of what (a stage or
// a sink), and returns the error.
func (p *Pipeline) refuse(what, problem string) error {
	err := fmt.Errorf("%w: %s: %s", ErrInvalidArgument, what, problem)
	p.fail(err)
	return err
}

// makeOutputs makes k output channels of capacity buf. A buffer whose items
// would take more than maxBufferBytes is refused: the channels are made
// unbuffered and the problem is returned.
func (n *node[T, R]) makeOutputs(k, buf int) (problem string) {
	var zero R
	if size := uint64(unsafe.Sizeof(zero)); size > 0 && uint64(buf) > maxBufferBytes/size {
		problem = fmt.Sprintf("buffer of %d items would take more than %d MiB", buf, maxBufferBytes>>20)
		buf = 0
	}
	if k == 1 {
		n.outs = n.oneOut[:]
	} else {
		n.outs = make([]chan R, k)
	}
	for i := range n.outs {
		n.outs[i] = make(chan R, buf)
	}
	if k > 0 {
		n.out = n.outs[0]
	}
	return problem
}

// readOnly returns the outputs as receive-only channels.
func (n *node[T, R]) readOnly() []<-chan R {
	r := make([]<-chan R, len(n.outs))
	for i, c := range n.outs {
		r[i] = c
	}
	return r
}

// closeOne counts one of the stage's goroutines returned; the last closes
// the outputs.
func (n *node[T, R]) closeOne() {
	if n.left.Add(-1) == 0 {
		closeAll(n.outs)
	}
}

// queue reports the summed length and capacity of the outputs.
func (n *node[T, R]) queue() (l, c int) {
	for _, o := range n.outs {
		l += len(o)
		c += cap(o)
	}
	if q := n.spill.Load(); q != nil {
		l += q.waiting()
		c += q.max
	}
	return l, c
}

// attach gives the stage's output the spill q, if the stage is a source
// (one goroutine writes its one output) whose output has the default
// capacity (neither BufferSize nor DefaultBuffer set it) and no spill yet.
func (n *node[T, R]) attach(q *spill[R]) bool {
	return n.s.source && len(n.outs) == 1 && n.cfg.buf < 0 && !n.p.bufSet && n.spill.CompareAndSwap(nil, q)
}

// newCaller returns the stage's caller of fn, with the stage's options
// applied.
func (n *node[T, R]) newCaller(fn func(context.Context, T) (R, error)) *caller[T, R] {
	n.c = makeCaller(n.p, &n.s, n.cfg, fn)
	return &n.c
}
