package pipeline

// This file holds Attach: state that the stages an adapter builds on one
// pipeline share, kept by the pipeline instead of a process-wide registry.

// Attach returns the value attached to p under key, attaching init() first
// if there is none yet. It is for state that the stages an adapter builds on
// one pipeline share, such as a message source and the sinks that must settle
// its messages, without a process-wide registry: the value lives as long as
// p. Keys compare as map keys do; use a key of an unexported type, as with
// context.WithValue. init runs at most once per key, while p is locked: it
// must not call p's methods. Attach on a nil p returns init().
func Attach[V any](p *Pipeline, key any, init func() V) V {
	if p == nil {
		return init()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.values[key]; ok {
		return v.(V)
	}
	v := init()
	if p.values == nil {
		p.values = make(map[any]any)
	}
	p.values[key] = v
	return v
}
