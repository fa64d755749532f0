package pipeline

// Merge sends every item of every input on one output, in no particular order
// across inputs (items of one input keep their order), and closes it when all
// inputs are closed. One goroutine reads each input. With no inputs the
// output is closed at once. On cancel it stops and closes its output; on
// [Pipeline.Stop] it goes on until every input closes. A nil input is an
// invalid argument.
func Merge[T any](p *Pipeline, ins ...<-chan T) <-chan T {
	if p == nil {
		return closedChan[T]()
	}
	s, cfg, err := p.newStage("merge", len(ins), optsBasic, nil)
	out := output[T](p, s, cfg.buf, &err)
	p.describe(s, func(s *stage) { s.queue = queueOf(out) })
	adopted := make([]inlet[T], len(ins))
	for i, in := range ins {
		if err != nil {
			break
		}
		var ok bool
		if adopted[i], ok = input(p, s, in); !ok {
			err = p.invalid(s, "input %d must not be nil", i)
		}
	}
	if err != nil || len(ins) == 0 {
		close(out)
		return out
	}
	done := closer(len(ins), out)
	for i, in := range adopted {
		t := &s.ctr[i]
		goWorker(p, s, nil, func() {
			eachItem(p, t, in, false, func(v T) bool {
				if !send(p, out, v) {
					return false
				}
				t.out.Add(1)
				return true
			})
		}, done)
	}
	return out
}
