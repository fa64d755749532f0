package pipeline

// This file holds the stages that split one input into several outputs: Tee
// (every item to every output) and Partition (each item to one).

// Tee sends every item of in to each of n outputs, in input order. An item
// goes to all outputs before the next is taken, so the slowest reader sets the
// pace; each output has its own buffer ([BufferSize]). Every output must be
// read (or the pipeline cancelled). [StageStats].Out counts items delivered to
// all outputs. n < 1, n > 1<<20 or a nil in is an invalid argument: n
// closed outputs are returned (none if n is out of range).
func Tee[T any](p *Pipeline, in <-chan T, n int, opts ...StageOption) []<-chan T {
	return build(p, splitSpec("tee", n, ""), opts, func(nd *node[T, T]) {
		nd.each(func(t *counters, v T) bool {
			for _, o := range nd.outs {
				if !sendHeld(p, t, o, v) {
					return false
				}
			}
			t.out.Add(1)
			return true
		})
	}, in).readOnly()
}

// Partition sends each item of in to exactly one of n outputs: output
// route(item) mod n (negative values wrap around, so any int is a valid
// route). Items on one output keep input order. Every output must be read (or
// the pipeline cancelled). Each output has its own buffer ([BufferSize]). A
// panic in route fails the pipeline with a [*PanicError]. n < 1, n > 1<<20, a
// nil route or a nil in is an invalid argument.
func Partition[T any](p *Pipeline, in <-chan T, n int, route func(T) int, opts ...StageOption) []<-chan T {
	return build(p, splitSpec("partition", n, mustNotBeNil(route == nil, "route")), opts, func(nd *node[T, T]) {
		nd.each(func(t *counters, v T) bool {
			i := route(v) % n
			if i < 0 {
				i += n
			}
			return sendCounted(p, t, nd.outs[i], v)
		})
	}, in).readOnly()
}

// splitSpec describes a one-goroutine stage with n outputs.
func splitSpec(kind string, n int, bad string) spec {
	return spec{kind: kind, workers: 1, outs: n, allowed: optsBasic, bad: firstProblem(inRange("n", n), bad)}
}
