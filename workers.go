package pipeline

// This file holds the ways a built stage runs its goroutines (each,
// eachWith, eachInput, goOne, pool, pair), so that a constructor keeps only
// what is specific to it: which workers share the input, who closes the
// outputs, and which item a panic names. Each keeps its workers' jobs (see
// engine.go) in one allocation.

// each starts the stage's workers on its input: each takes items in turn and
// hands them to handle, with its own counters, until the input ends or
// handle returns false. The last worker to return closes the outputs. A
// panic names the item being handled.
func (n *node[T, R]) each(handle func(t *counters, v T) bool) {
	n.left.Store(int32(len(n.s.ctr)))
	jobs := n.oneEach[:]
	if len(n.s.ctr) > 1 {
		jobs = make([]eachJob[T], len(n.s.ctr))
	}
	for i := range jobs {
		j := &jobs[i]
		j.p, j.s, j.owner, j.t, j.in, j.handle = n.p, &n.s, n, &n.s.ctr[i], n.in, handle
		goWorker(n.p, &n.s, j)
	}
}

// eachWith is each for a stage whose workers each keep state of their own:
// mk makes each worker's handler, given its counters.
func (n *node[T, R]) eachWith(mk func(t *counters) func(v T) bool) {
	n.left.Store(int32(len(n.s.ctr)))
	jobs := make([]eachJob[T], len(n.s.ctr))
	for i := range jobs {
		j := &jobs[i]
		j.p, j.s, j.owner, j.t, j.in = n.p, &n.s, n, &n.s.ctr[i], n.in
		own := mk(j.t)
		j.handle = func(_ *counters, v T) bool { return own(v) }
		goWorker(n.p, &n.s, j)
	}
}

// eachInput starts one goroutine per input, each handing the items of its
// own input to handle with its own counters. The last to return closes the
// outputs.
func (n *node[T, R]) eachInput(handle func(t *counters, v T) bool) {
	n.left.Store(int32(len(n.ins)))
	jobs := make([]eachJob[T], len(n.ins))
	for i, in := range n.ins {
		j := &jobs[i]
		j.p, j.s, j.owner, j.t, j.in, j.handle, j.plain = n.p, &n.s, n, &n.s.ctr[i], in, handle, true
		goWorker(n.p, &n.s, j)
	}
}

// goOne starts the stage's one goroutine, running body; the outputs are
// closed when it returns, after exit (which may be nil).
func (n *node[T, R]) goOne(body func(t *counters), exit func()) {
	n.left.Store(1)
	goWorker(n.p, &n.s, &funcJob[T, R]{n: n, t: &n.s.ctr[0], one: body, done: exit, plain: true})
}

// pool starts the stage's workers, each running body with its own counters
// and a place to record the item it handles (named by a panic); exit (which
// may be nil) runs as each returns, clean if body returned normally. The last to return
// closes the outputs.
func (n *node[T, R]) pool(body func(t *counters, cur *T), exit func(clean bool)) {
	n.left.Store(int32(len(n.s.ctr)))
	jobs := make([]funcJob[T, R], len(n.s.ctr))
	for i := range jobs {
		j := &jobs[i]
		j.n, j.t, j.body, j.onExit = n, &n.s.ctr[i], body, exit
		goWorker(n.p, &n.s, j)
	}
}

// pair starts the stage's two goroutines: intake, which takes the input (cur
// is the item it holds, named by a panic), and outlet, which sends. Both
// count on the stage's one counters, intake In and outlet Out, so that each
// count keeps one writer. exit runs as each returns, clean if it returned
// normally; the outputs are closed when both have returned.
func (n *node[T, R]) pair(intake func(t *counters, cur *T), outlet func(t *counters), exit func(clean bool)) {
	n.left.Store(2)
	t := &n.s.ctr[0]
	jobs := []funcJob[T, R]{
		{n: n, t: t, body: intake, onExit: exit},
		{n: n, t: t, one: outlet, onExit: exit, plain: true},
	}
	goWorker(n.p, &n.s, &jobs[0])
	goWorker(n.p, &n.s, &jobs[1])
}

// funcJob is a worker of goOne, pool or pair: it runs body, then exit, and
// closes the outputs if it is the stage's last.
type funcJob[T, R any] struct {
	n      *node[T, R]
	t      *counters
	body   func(t *counters, cur *T) // or one
	one    func(t *counters)
	onExit func(clean bool) // may be nil
	done   func()           // may be nil
	cur    T
	plain  bool // a panic names no item
}

func (j *funcJob[T, R]) run() {
	if j.one != nil {
		j.one(j.t)
		return
	}
	j.body(j.t, &j.cur)
}

func (j *funcJob[T, R]) item() any {
	if j.plain {
		return nil
	}
	return j.cur
}

func (j *funcJob[T, R]) exit(clean bool) {
	if j.onExit != nil {
		j.onExit(clean)
	}
	if j.done != nil {
		j.done()
	}
	j.n.closeOne()
}
