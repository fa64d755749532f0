package pipeline

// Filter sends on the items of in for which keep returns true, in input
// order, and drops the rest (counted in [StageStats].Dropped, so In = Out +
// Dropped; a [Discarder] item is told [ErrFiltered]). keep runs on one goroutine; it should be cheap (use [FanOut] with
// workers for slow predicates). A panic in keep fails the pipeline with a
// [*PanicError]. On cancel it stops and closes its output; on
// [Pipeline.Stop] it goes on until its input closes. A nil keep or a nil in is
// an invalid argument.
func Filter[T any](p *Pipeline, in <-chan T, keep func(T) bool, opts ...StageOption) <-chan T {
	s, _, out, src, ok := transform[T, T](p, "filter", in, 1, nilName(keep == nil, "keep"), optsBasic, opts)
	if !ok {
		return out
	}
	tell := discarder[T]()
	runWorkers(p, s, src, out, 1, false, func(t *counters) step[T, T] {
		return func(v T) (T, bool, bool) {
			if keep(v) {
				return v, true, true
			}
			t.dropped.Add(1)
			if tell {
				discard(v, ErrFiltered)
			}
			return v, false, true
		}
	})
	return out
}
