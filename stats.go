package pipeline

// This file holds what Stats reports: the exported StageStats, the record a
// pipeline keeps of each stage it built, and the per-worker counters the
// stage's goroutines write and Stats sums.

import "sync/atomic"

// StageStats is a snapshot of one stage's counters. For stages that pass each
// item on at most once, In = Out + Dropped + Errors once the pipeline has
// finished (before that, the difference is what is still inside the stage).
// [FlatMap] and [Tee] may emit more items than they take in; [Batch] and
// [Unbatch] count items, not batches.
//
// Counting is always on and cheap: no lock, and each worker has its own
// counters on its own cache line.
type StageStats struct {
	Name, Kind string
	// Workers is the configured number of goroutines calling the stage's
	// function; Busy is how many calls of a FanOut, FanOutOrdered, FlatMap or
	// ForEach function are running now (0 for other stages).
	Workers, Busy int
	// In counts items taken from the input, Out items sent on, Dropped items
	// deliberately not sent (filtered out, shed by DropOnFull), Errors items
	// skipped through OnError, Retries re-runs of a failed call.
	In, Out, Dropped, Errors, Retries uint64
	// DeadLetters counts the failed items (among Errors) sent to the
	// stage's [DeadLetters]; Rejected the calls its [Breaker] refused with
	// [ErrOpen].
	DeadLetters, Rejected uint64
	// Breaker is the state of the stage's [CircuitBreaker] now, and
	// BreakerOpened how often it has opened (for every stage sharing it);
	// both zero without one.
	Breaker       BreakerState
	BreakerOpened uint64
	// QueueLen and QueueCap describe the stage's output channel(s) now.
	QueueLen, QueueCap int
	// Unread counts the stage's outputs that no stage or sink of the
	// pipeline reads (yet). Unless code of yours ranges over such an output,
	// it is a wiring mistake: the stage blocks once the output's buffer is
	// full, and the pipeline never ends.
	Unread int
	// Shared counts the stage's channels (inputs and outputs) that more than
	// one stage or sink of the pipeline reads. Each item of such a channel
	// goes to one of its readers, not to all: use [Tee] to give every reader
	// every item.
	Shared int
}

// counters are one worker's counts, written by that worker only (a source's
// emit, which may be called from several goroutines, excepted) and padded to
// a cache line, so that workers never contend on them: an uncontended atomic
// add per count. Busy is in - called while a goroutine of the stage is alive.
type counters struct {
	in, out, dropped, errors, retries, called atomic.Uint64
	deadLetters, rejected                     atomic.Uint64 // failure handling
}

// channelRef is the pipeline's record of a channel that a stage made or
// reads: which stage made it (nil: made outside the pipeline) and how many
// stages and sinks read it. Only building a stage changes it.
type channelRef struct {
	maker   *stage
	readers atomic.Int32
}

// stage is the pipeline's record of one stage: what the builder was told
// about it (fixed once it is registered) and the counters its goroutines
// write. Stats and Diagram read it.
type stage struct {
	name, kind string
	index      int // 1-based, in creation order
	workers    int
	source     bool              // it takes nothing in: In is Out
	calls      bool              // its items are calls of a user function: Busy counts them
	inputs     []*stage          // upstream stages, for Diagram
	queue      func() (n, c int) // its outputs' summed length and capacity; nil: no output
	outs, ins  []*channelRef     // the channels it makes and reads, for Unread and Shared
	limiter    *Limiter          // its Limit option's, if any
	breaker    *CircuitBreaker   // its Breaker option's, if any
	feeds      deadLetterOut     // the dead letters it feeds, if any: left when its last worker ends
	pending    atomic.Int32      // workers not ended yet, while it feeds dead letters
	ctr        []counters        // one per worker
	one        [1]counters       // ctr's storage for a one-worker stage
	live       atomic.Int32      // goroutines of the stage still running
}

// snapshot sums the stage's counters. A worker counts an item in before
// anything that follows from it (out, dropped, errors, then called; out may
// be counted by another worker, as in FanOutOrdered), so reading every
// worker's effects first and every worker's in last gives a consistent view:
// In never below Out + Dropped + Errors, and Busy at most one per worker, at
// every moment.
func (s *stage) snapshot() StageStats {
	st := StageStats{Name: s.name, Kind: s.kind, Workers: s.workers}
	var one [1]uint64
	called := one[:]
	if len(s.ctr) > 1 {
		called = make([]uint64, len(s.ctr))
	}
	for j := range s.ctr {
		c := &s.ctr[j]
		called[j] = c.called.Load()
		st.Out += c.out.Load()
		st.Dropped += c.dropped.Load()
		st.Errors += c.errors.Load()
		st.Retries += c.retries.Load()
		st.DeadLetters += c.deadLetters.Load()
		st.Rejected += c.rejected.Load()
	}
	live := s.live.Load() > 0
	for j := range s.ctr {
		in := s.ctr[j].in.Load()
		st.In += in
		// A call cut short by a panic is never counted as returned; with no
		// goroutine of the stage left, nothing is running.
		if s.calls && in > called[j] && live {
			st.Busy++
		}
	}
	if b := s.breaker; b != nil {
		st.Breaker, st.BreakerOpened = b.State(), b.Counts().Opened
	}
	if s.queue != nil {
		st.QueueLen, st.QueueCap = s.queue()
	}
	if s.source {
		st.In = st.Out
	}
	for _, o := range s.outs {
		switch n := o.readers.Load(); {
		case n == 0:
			st.Unread++
		case n > 1:
			st.Shared++
		}
	}
	for _, in := range s.ins {
		if in.readers.Load() > 1 {
			st.Shared++
		}
	}
	return st
}

// workerEnded records that one worker of the stage has ended; the last
// to end leaves the dead letters the stage feeds.
func (s *stage) workerEnded() {
	if s.feeds != nil && s.pending.Add(-1) == 0 {
		s.feeds.leave()
	}
}

// queueOf reports the summed length and capacity of outs.
func queueOf[T any](outs []chan T) func() (int, int) {
	if len(outs) == 1 {
		o := outs[0]
		return func() (int, int) { return len(o), cap(o) }
	}
	return func() (l, c int) {
		for _, o := range outs {
			l += len(o)
			c += cap(o)
		}
		return l, c
	}
}
