package pipeline

// This file holds the pipeline-wide side of failure handling: CollectErrors,
// under which the failure of an item is collected rather than failing the
// pipeline (failItem, and the joined result the end reports), and the
// sealing of a pipeline (its first sink, or Wait), after which what waits
// for every stage that could feed it (dead letters) may end.

import (
	"errors"
	"sort"
)

// CollectErrors makes the pipeline run everything to the end instead of
// failing at the first failed item: every error that would have failed the
// pipeline from one item (a [*StageError] of a stage's function, including
// [ErrOpen] from a [Breaker], or the error an [OnError] handler returned) or
// from a source's function is collected, the item is skipped (counted in
// [StageStats].Errors) and the stage goes on. [Pipeline.Wait] then returns
// errors.Join of every collected error, ordered by the stage's position in
// creation order, then by the error's text, then by the order they occurred
// (so the same failures give the same error, however the workers raced),
// followed by the pipeline's own failure if it has one. errors.Is and
// errors.As reach each of them.
//
// What still fails the pipeline at once: a panic (a [*PanicError]), a bad
// argument, the parent context ending, and Shutdown's deadline. Dead letters
// ([DeadLetters]) and OnError returning nil take precedence: an item they
// take care of is not collected.
func CollectErrors() Option {
	return func(p *Pipeline) { p.collect = true }
}

// failItem is fail for the failure of one item (or a source's function) in
// the stage at index: under CollectErrors it is collected instead, and
// failItem reports true (the stage goes on); otherwise the pipeline fails
// and failItem reports false.
func (p *Pipeline) failItem(index int, err error) bool {
	if !p.collect {
		p.fail(err)
		return false
	}
	p.mu.Lock()
	p.collected = append(p.collected, struct {
		stage int
		err   error
	}{index, err})
	p.mu.Unlock()
	return true
}

// withCollected returns err joined after every collected error, in the
// order CollectErrors documents; err alone if none was collected. p.mu is
// held.
func (p *Pipeline) withCollected(err error) error {
	if len(p.collected) == 0 {
		return err
	}
	c := p.collected
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].stage != c[j].stage {
			return c[i].stage < c[j].stage
		}
		return c[i].err.Error() < c[j].err.Error()
	})
	errs := make([]error, 0, len(c)+1)
	for _, e := range c {
		errs = append(errs, e.err)
	}
	p.collected = nil
	return errors.Join(append(errs, err)...)
}

// onSeal registers fn to run when the pipeline is sealed (see seal); at
// at once if it is already.
func (p *Pipeline) onSeal(fn func()) {
	p.mu.Lock()
	if !p.sealed {
		p.sealers = append(p.sealers, fn)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	fn()
}

// seal runs the onSeal hooks, once: when the first sink starts or Wait (or
// Shutdown) is called, the pipeline is taken to be built, so what waits for
// every stage that could ever feed it (dead letters) may end.
func (p *Pipeline) seal() {
	p.mu.Lock()
	if p.sealed {
		p.mu.Unlock()
		return
	}
	p.sealed = true
	hooks := p.sealers
	p.sealers = nil
	p.mu.Unlock()
	for _, h := range hooks {
		h()
	}
}
