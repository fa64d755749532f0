package pipeline

// This file holds what Stats reports: the exported StageStats, the record a
// pipeline keeps of each stage it built, and the per-worker counters the
// stage's goroutines write and Stats sums.

import (
	"sync/atomic"
	"time"
)

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
	// function; Busy is how many calls of a FanOut, FanOutOrdered,
	// FanOutKeyed, FlatMap or ForEach function are running now (0 for other
	// stages).
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
	// QueueLen and QueueCap describe the stage's output channel(s) now, and
	// a source's spill if it has one (see "Buffers" in the package doc).
	QueueLen, QueueCap int
	// Limit is the current limit of the Limiter given with the [Limit]
	// option (an adaptive one moves it), 0 without one.
	Limit int
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
	// Pending and Keys describe what a keyed stage ([FanOutKeyed],
	// [ThrottleKeyed]) holds now: Pending counts the items waiting inside it
	// for their key (at most its [MaxPending]), Keys the keys it keeps state
	// for: those with a call in flight for FanOutKeyed (at most Workers, and
	// equal to Busy but for keys not equal to themselves, such as NaN), those
	// it remembers for ThrottleKeyed (items waiting, or a rate bucket not full
	// again; the others go at its next sweep). Both are 0 for other stages.
	Pending, Keys int

	// Latency is the distribution of the durations of the stage's calls of
	// its user function (each attempt's sum, retries and backoff included),
	// of one call in 16 per worker, the first included (every call an
	// observer asks for, see [CallObserver]); nil for a stage that calls no
	// function. Its p50, p90, p99: Latency.Quantile(0.5), ….
	Latency *Histogram
	// RecvWait is the time the stage's goroutines spent waiting for an item
	// on an empty input (upstream is slower), SendWait the time they spent
	// blocked sending to a full output or, for a busy source, holding back
	// (see "Buffers" in the package doc): downstream is slower. Both are
	// summed over goroutines. Running is how long the stage has run (from
	// its start to the end of its last goroutine, or to now).
	RecvWait, SendWait, Running time.Duration
	// Utilization is the share of its goroutines' time (Workers × Running)
	// the stage spent neither waiting for input nor blocked on its output:
	// working, or in its user function. See Bottleneck.
	Utilization float64
	// Bottleneck marks the one stage that limits the pipeline's throughput:
	// of the stages whose Utilization is at least 0.5, the one that spent
	// the most time working, Utilization × Running (see docs/observing.md);
	// none if every stage spent most of its time waiting. Its upstream stages spend their time blocked
	// sending to it, its downstream ones waiting for its items.
	Bottleneck bool
}

// counters are one worker's counts, written by that worker only (a source's
// emit, which may be called from several goroutines, excepted) and padded to
// a cache line, so that workers never contend on them: an uncontended atomic
// add per count. (The two goroutines of a stage started with pair share one
// counters, but each count still has one writer: the intake In, the outlet
// Out.) Busy is in - called while a goroutine of the stage is alive.
type counters struct {
	in, out, dropped, errors, retries, called atomic.Uint64
	deadLetters, rejected                     atomic.Uint64 // failure handling
	timing
	cur *tag // the ticket of the item the worker holds (see NewCheckpoint)
	// 128 bytes in all: two cache lines (TestCountersSize)
}

// inlineSamples is how many sampled call durations a worker keeps in its
// counters before it makes a histogram: a worker of a short-lived or wide
// stage (a small pipeline per request, 1,000 workers taking 20 items each)
// makes none.
const inlineSamples = 3

// sampled is how many of the inline samples are taken.
func (t *timing) sampled() int {
	k := 0
	for k < len(t.first) && t.first[k].Load() != 0 {
		k++
	}
	return k
}

// timing is a worker's share of what the stage's durations sum: blocked
// sending and receiving (nanoseconds), and its sampled call durations. tick
// counts calls and is touched by the worker's goroutine only.
type timing struct {
	recvWait, sendWait atomic.Int64
	first              [inlineSamples]atomic.Int64 // the first sampled calls' durations + 1; 0: none yet
	lat                atomic.Pointer[liveHist]    // the later sampled calls': made at the one after them
	tick               uint32
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
	source     bool                             // it takes nothing in: In is Out
	calls      bool                             // its items are calls of a user function: Busy counts them
	inputs     []*stage                         // upstream stages, for Diagram
	held       func() (busy, pending, keys int) // a keyed stage's calls and what it holds; nil for others
	queue      queuer                           // its outputs' summed length and capacity; nil: no output
	outs, ins  []*channelRef                    // the channels it makes and reads, for Unread and Shared
	limiter    *Limiter                         // its Limit option's, if any
	breaker    *CircuitBreaker                  // its Breaker option's, if any
	feeds      deadLetterOut                    // the dead letters it feeds, if any: left when its last worker ends
	pending    atomic.Int32                     // workers not ended yet, while it feeds dead letters
	ctr        []counters                       // one per worker
	one        [1]counters                      // ctr's storage for a one-worker stage
	live       atomic.Int32                     // goroutines of the stage still running
	life                                        // when it started and ended
}

// life is when a stage's first goroutine started and its last one ended
// (monotonic() + 1 in nanoseconds; 0: not yet), and how many of its
// goroutines have ended.
type life struct {
	t0, t1 atomic.Int64
	exits  atomic.Int32
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
		st.QueueLen, st.QueueCap = s.queue.queue()
	}
	st.Limit = s.limiter.Limit()
	// A call cut short by a panic is never counted as returned; with no
	// goroutine of the stage left, nothing is running. A keyed stage counts
	// its calls itself: In also counts the items waiting.
	if s.held != nil {
		var busy int
		busy, st.Pending, st.Keys = s.held()
		if s.live.Load() > 0 {
			st.Busy = busy
		}
	} else if s.source {
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
	s.timings(&st)
	return st
}

// timings adds the stage's durations to st: its call latency, the time its
// goroutines waited, how long it has run and its utilization.
func (s *stage) timings(st *StageStats) {
	if s.calls {
		st.Latency = new(Histogram)
	}
	for j := range s.ctr {
		c := &s.ctr[j]
		st.RecvWait += time.Duration(c.recvWait.Load())
		st.SendWait += time.Duration(c.sendWait.Load())
		if st.Latency != nil {
			for k := range c.first {
				if f := c.first[k].Load(); f != 0 {
					st.Latency.add(time.Duration(f - 1))
				}
			}
			if l := c.lat.Load(); l != nil {
				l.addTo(st.Latency)
			}
		}
	}
	t0 := s.t0.Load()
	if t0 == 0 {
		return
	}
	t1 := s.t1.Load()
	if t1 == 0 {
		t1 = int64(monotonic()) + 1
	}
	st.Running = time.Duration(max(t1-t0, 0))
	if total := float64(st.Running) * float64(max(len(s.ctr), 1)); total > 0 {
		st.Utilization = min(max(1-float64(st.RecvWait+st.SendWait)/total, 0), 1)
	}
}

// markBottleneck sets Bottleneck on the stage of stats that spent the most
// time working (Utilization × Running) of those whose Utilization is at
// least 0.5, if any.
func markBottleneck(stats []StageStats) {
	best, most := -1, 0.0
	for i, st := range stats {
		if work := st.Utilization * float64(st.Running); st.Utilization >= 0.5 && work > most {
			best, most = i, work
		}
	}
	if best >= 0 {
		stats[best].Bottleneck = true
	}
}

// workerEnded records that one worker of the stage has ended; the last
// to end leaves the dead letters the stage feeds.
func (s *stage) workerEnded() {
	if s.feeds != nil && s.pending.Add(-1) == 0 {
		s.feeds.leave()
	}
}

// queuer reports the summed length and capacity of a stage's outputs.
type queuer interface{ queue() (n, c int) }

// epoch is when the package was initialized: monotonic reads the clock
// against it.
var epoch = time.Now()

// monotonic returns the monotonic clock's time since epoch: one read of the
// clock, where time.Now reads the wall clock too (and costs two to three
// times as much). Every duration the stages measure is read with it.
func monotonic() time.Duration { return time.Since(epoch) }
