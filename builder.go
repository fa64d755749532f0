package pipeline

// This file is the one way to build a stage. A constructor describes its
// stage once, in a spec (kind, workers, outputs, options it accepts, its own
// argument problem) and hands it to build with its options, its inputs and
// the function that starts its goroutines. build registers the stage, makes
// its outputs, adopts its inputs, and either starts the goroutines or, if an
// argument is bad, closes the outputs and fails the pipeline with the reason.
// The ways a started stage runs its goroutines are here too (each, eachInput,
// goOne, pool), so that a constructor keeps only what is specific to it.

import (
	"fmt"
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
	inline  bool   // a sink running on its caller's goroutine: no stage of Stats
	bad     string // a problem with the constructor's own arguments; "" if none
}

// node is a built stage, as its goroutines see it.
type node[T, R any] struct {
	s    stage
	p    *Pipeline
	cfg  stageConfig
	in   inlet[T]   // the input; Merge's first
	ins  []inlet[T] // every input
	out  chan R     // the output; Tee's and Partition's first; nil for a sink
	outs []chan R   // every output
	err  error      // the argument problem, if the stage did not start

	oneIn  [1]inlet[T] // ins' storage for a one-input stage
	oneOut [1]chan R   // outs' storage for a one-output stage
	oneRef [1]*channelRef
	inRef  [1]*channelRef
	upRef  [1]*stage
	ref    channelRef // the record of a one-output stage's output
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
	return spec{kind: kind, workers: workers, outs: 1, allowed: optsCall, calls: true,
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
// closed (none is made if their number is out of range), the pipeline fails
// with the error, and n.err holds it. The argument problems are checked in
// this order: a pipeline that has ended, the options, the constructor's own
// problem, a nil input.
func build[T, R any](p *Pipeline, sp spec, opts []StageOption, start func(n *node[T, R]), ins ...<-chan T) *node[T, R] {
	n := &node[T, R]{p: p, cfg: configure(opts)}
	outs := sp.outs
	if sp.bad != "" && (outs < 0 || outs > maxWorkers) {
		outs = 0 // a refused count allocates nothing
	}
	if p == nil {
		n.err = errNilPipeline()
		n.makeOutputs(outs, 0)
		closeAll(n.outs)
		return n
	}
	buf := n.cfg.buf
	if buf < 0 {
		buf = p.buf
	}
	problem := n.makeOutputs(outs, buf)
	workers := sp.workers
	if sp.bad != "" || workers < 1 || workers > maxWorkers {
		workers = 1 // the counters of a stage that does not start
	}
	s := &n.s
	s.kind, s.workers, s.source, s.calls = sp.kind, sp.workers, sp.source, sp.calls
	if workers == 1 {
		s.ctr = s.one[:]
	} else {
		s.ctr = make([]counters, workers)
	}
	if len(n.outs) > 0 {
		s.queue = queueOf(n.outs)
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
		ref := p.chans[in]
		if ref == nil {
			ref = &channelRef{} // made outside the pipeline
			p.chans[in] = ref
		}
		ref.readers.Add(1)
		if ref.maker != nil && !sp.inline {
			s.inputs = append(s.inputs, ref.maker)
		}
		s.ins = append(s.ins, ref)
		n.ins[i] = inlet[T]{ch: in, foreign: ref.maker == nil}
	}
	if sp.inline {
		s.name = sp.kind
	} else {
		s.index = len(p.stages) + 1
		s.name = n.cfg.name
		if s.name == "" {
			s.name = fmt.Sprintf("%s#%d", sp.kind, s.index)
		}
		s.outs = n.outRefs(len(n.outs))
		for i, o := range n.outs {
			s.outs[i].maker = s
			p.chans[(<-chan R)(o)] = s.outs[i]
		}
		p.stages = append(p.stages, s)
	}
	p.mu.Unlock()
	if held {
		defer p.release()
	}
	if len(n.ins) > 0 {
		n.in = n.ins[0]
	}

	switch {
	case !held && !sp.inline: // a sink may read what an ended pipeline left
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
		n.err = fmt.Errorf("%w: %s: %s", ErrInvalidArgument, s.name, problem)
		p.fail(n.err)
		closeAll(n.outs)
		return n
	}
	if start != nil {
		start(n)
	}
	return n
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

// each starts the stage's workers on its input: each takes items in turn and
// hands them to the handler mk made for it (given the worker's own
// counters) until the input ends or the handler returns false. The last
// worker to return closes the outputs. A panic names the item being handled.
func (n *node[T, R]) each(mk func(t *counters) func(v T) bool) {
	done := closer(len(n.s.ctr), n.outs)
	for i := range n.s.ctr {
		t := &n.s.ctr[i]
		handle := mk(t)
		var cur T
		goWorker(n.p, &n.s, func() any { return cur }, func() {
			eachItem(n.p, t, n.in, n.s.calls, func(v T) bool {
				cur = v
				return handle(v)
			})
		}, func(bool) { done() })
	}
}

// eachInput starts one goroutine per input, each handing the items of its
// own input to handle with its own counters. The last to return closes the
// outputs.
func (n *node[T, R]) eachInput(handle func(t *counters, v T) bool) {
	done := closer(len(n.ins), n.outs)
	for i, in := range n.ins {
		t := &n.s.ctr[i]
		goWorker(n.p, &n.s, nil, func() {
			eachItem(n.p, t, in, false, func(v T) bool { return handle(t, v) })
		}, func(bool) { done() })
	}
}

// goOne starts the stage's one goroutine, running body; the outputs are
// closed when it returns, after exit (which may be nil).
func (n *node[T, R]) goOne(body func(t *counters), exit func()) {
	t := &n.s.ctr[0]
	goWorker(n.p, &n.s, nil, func() { body(t) }, func(bool) {
		if exit != nil {
			exit()
		}
		closeAll(n.outs)
	})
}

// pool starts the stage's workers, each running body with its own counters
// and a place to record the item it handles (named by a panic); exit runs
// as each returns, clean if body returned normally. The last to return
// closes the outputs.
func (n *node[T, R]) pool(body func(t *counters, cur *T), exit func(clean bool)) {
	done := closer(len(n.s.ctr), n.outs)
	for i := range n.s.ctr {
		t := &n.s.ctr[i]
		var cur T
		goWorker(n.p, &n.s, func() any { return cur }, func() { body(t, &cur) }, func(clean bool) {
			exit(clean)
			done()
		})
	}
}
