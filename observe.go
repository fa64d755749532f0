package pipeline

// This file attaches observers to a pipeline (WithObserver) and keeps the
// durations Stats reports: when each stage starts and ends, telling the
// observers, and the sampled timing of calls of user functions, told to the
// histogram of the worker and to the call observers. The time goroutines
// spend blocked is measured where they block, in channels.go.

import "time"

// latencyEvery is how often a worker times a call for its Latency: one call
// in latencyEvery, the first included. A power of two.
const latencyEvery = 16

// WithObserver attaches o to the pipeline: it hears of every stage starting
// and ending and of the pipeline's end, and, if it is a [CallObserver], of
// calls of user functions (see there). Several observers may be attached;
// each hears everything. A nil o is ignored. A pipeline without an observer
// pays nothing for the hook.
func WithObserver(o Observer) Option {
	return func(p *Pipeline) {
		if o == nil {
			return
		}
		if p.obs == nil {
			p.obs = &observers{}
		}
		p.obs.list = append(p.obs.list, o)
		if co, ok := o.(CallObserver); ok && co.CallEvery() > 0 {
			p.obs.calls = append(p.obs.calls, co)
			p.obs.every = append(p.obs.every, uint32(co.CallEvery()))
		}
		p.Finally(func(result error) error {
			o.PipelineEnded(result, p.Stats())
			return nil
		})
	}
}

// begin records that a goroutine of s starts; the first one starts the stage.
func (s *stage) begin(p *Pipeline) {
	if s.t0.Load() != 0 || !s.t0.CompareAndSwap(0, int64(monotonic())+1) {
		return
	}
	if p.obs != nil {
		s.tellStarted(p)
	}
}

// tellStarted and tellEnded tell the observers. They are kept out of begin
// and end, which every goroutine of a stage runs: the StageInfo and
// StageStats they build would otherwise be in those frames (end's was 800
// bytes), and a goroutine ending with a small stack grew it (a copy) just
// to record its end time.
//
//go:noinline
func (s *stage) tellStarted(p *Pipeline) {
	info := infoOf(s)
	for _, o := range p.obs.list {
		o.StageStarted(info)
	}
}

//go:noinline
func (s *stage) tellEnded(p *Pipeline) {
	info, final := infoOf(s), s.snapshot()
	for _, o := range p.obs.list {
		o.StageEnded(info, final)
	}
}

// end records that a goroutine of s has ended; the last one ends the stage.
func (s *stage) end(p *Pipeline) {
	if s.exits.Add(1) != int32(len(s.ctr)) {
		return
	}
	s.t1.Store(int64(monotonic()) + 1)
	if p.obs != nil {
		s.tellEnded(p)
	}
}

// callStart counts a call about to start on the worker of t and returns
// when it starts (monotonic() + 1) if it is to be timed, or 0.
func (t *counters) callStart(p *Pipeline) time.Duration {
	t.tick++
	if (t.tick-1)&(latencyEvery-1) != 0 && p.obs == nil {
		return 0
	}
	return t.sampleStart(p)
}

// sampleStart is callStart's slow path: a call the histogram or an
// observer wants timed.
func (t *counters) sampleStart(p *Pipeline) time.Duration {
	n := t.tick - 1
	timed := n&(latencyEvery-1) == 0
	if p.obs != nil {
		for _, e := range p.obs.every {
			timed = timed || n%e == 0
		}
	}
	if !timed {
		return 0
	}
	return monotonic() + 1
}

// callEnd records the end of a call of stage s on v that callStart timed
// (a non-zero start), with the error it returned.
func callEnd[T any](p *Pipeline, s *stage, t *counters, start time.Duration, v T, err error) {
	if start != 0 {
		callEnded(p, s, t, start-1, v, err)
	}
}

func callEnded[T any](p *Pipeline, s *stage, t *counters, start time.Duration, v T, err error) {
	d := monotonic() - start
	// The first durations are kept in t (only this worker writes them): a
	// short-lived or wide stage makes no histogram.
	if k := t.sampled(); k < len(t.first) {
		t.first[k].Store(int64(d) + 1)
	} else {
		l := t.lat.Load()
		if l == nil {
			l = new(liveHist)
			t.lat.Store(l)
		}
		l.record(d)
	}
	if p.obs == nil || len(p.obs.calls) == 0 {
		return
	}
	n := t.tick - 1
	var ci CallInfo
	for i, o := range p.obs.calls {
		if n%p.obs.every[i] != 0 {
			continue
		}
		if ci.Start.IsZero() {
			ci = CallInfo{Stage: infoOf(s), Item: v, Start: epoch.Add(start), Duration: d, Err: err}
		}
		o.Call(ci)
	}
}
