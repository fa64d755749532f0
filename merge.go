package pipeline

// This file holds Merge, the fan-in stage.

import "fmt"

// Merge sends every item of every input on one output, in no particular order
// across inputs (items of one input keep their order), and closes it when all
// inputs are closed. One goroutine reads each input. With no inputs the
// output is closed at once. On cancel it stops and closes its output; on
// [Pipeline.Stop] it goes on until every input closes. A nil input, or more
// than 1<<20 inputs, is an invalid argument. Merge takes no options: to name
// the stage or size its output, put a [Buffer] (which takes [Name]) after it.
func Merge[T any](p *Pipeline, ins ...<-chan T) <-chan T {
	sp := spec{kind: "merge", workers: len(ins), outs: 1, allowed: optsBasic}
	if len(ins) > maxWorkers {
		sp.bad = fmt.Sprintf("%d inputs, must be at most %d", len(ins), maxWorkers)
	}
	return build(p, sp, nil, func(n *node[T, T]) {
		if len(ins) == 0 {
			closeAll(n.outs)
			return
		}
		n.eachInput(func(t *counters, v T) bool { return sendCounted(p, t, n.out, v) })
	}, ins...).out
}
