package pipeline

// This file holds the ways a built stage runs its goroutines (each,
// eachInput, goOne, pool, pair), so that a constructor keeps only what is
// specific to it: which workers share the input, who closes the outputs,
// and which item a panic names.

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
			eachItem(n.p, t, n.in, n.s.calls, &cur, handle)
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
			var cur T
			eachItem(n.p, t, in, false, &cur, func(v T) bool { return handle(t, v) })
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

// pair starts the stage's two goroutines: intake, which takes the input (cur
// is the item it holds, named by a panic), and outlet, which sends. Both
// count on the stage's one counters, intake In and outlet Out, so that each
// count keeps one writer. exit runs as each returns, clean if it returned
// normally; the outputs are closed when both have returned.
func (n *node[T, R]) pair(intake func(t *counters, cur *T), outlet func(t *counters), exit func(clean bool)) {
	done := closer(2, n.outs)
	t := &n.s.ctr[0]
	var cur T
	goWorker(n.p, &n.s, func() any { return cur }, func() { intake(t, &cur) }, func(clean bool) {
		exit(clean)
		done()
	})
	goWorker(n.p, &n.s, nil, func() { outlet(t) }, func(clean bool) {
		exit(clean)
		done()
	})
}
