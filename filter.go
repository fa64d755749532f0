package pipeline

// This file holds Filter.

// Filter sends on the items of in for which keep returns true, in input
// order, and drops the rest (counted in [StageStats].Dropped, so In = Out +
// Dropped; a [Discarder] item is told [ErrFiltered]). keep runs on one goroutine; it should be cheap (use [FanOut] with
// workers for slow predicates). A panic in keep fails the pipeline with a
// [*PanicError]. On cancel it stops and closes its output; on
// [Pipeline.Stop] it goes on until its input closes. A nil keep or a nil in is
// an invalid argument.
func Filter[T any](p *Pipeline, in <-chan T, keep func(T) bool, opts ...StageOption) <-chan T {
	sp := spec{kind: "filter", workers: 1, outs: 1, allowed: optsBasic, bad: mustNotBeNil(keep == nil, "keep")}
	return build(p, sp, opts, func(n *node[T, T]) {
		tell := discarder[T]()
		n.each(func(t *counters, v T) bool {
			if keep(v) {
				return sendCounted(p, t, n.out, v)
			}
			t.dropped.Add(1)
			if tell {
				discard(v, ErrFiltered)
			}
			return true
		})
	}, in).out
}
