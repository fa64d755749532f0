package pipeline

// This file holds the pacing of a busy source: a source whose own code
// works between its emits yields after each one, and while an item it sent
// still waits in the pipeline it parks until a stage takes one, as the
// sender of an unbuffered channel would. It stops holding back while that
// costs it much of its time (its readers are slower than it), so a source
// feeding slower stages keeps its buffers. On the stages' side, each item a
// stage takes wakes the source if it waits (Pipeline.took).

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// busyAfter is the mean time between a source's emits from which it
	// counts as busy: a yield and a look at the pipeline (well under a
	// microsecond) cost it a few percent at most.
	busyAfter = 2 * time.Microsecond
	// paceEvery is how many emits a source's pacer judges at once.
	paceEvery = 16
	// paceHorizon is about how far back the share of its time a source
	// spent holding back goes.
	paceHorizon = 10 * time.Millisecond
	// heldShareMax is the share of its time above which a source stops
	// holding back.
	heldShareMax = 0.25
	// restMax bounds the windows (of paceEvery emits) a source that held
	// back too much goes without, before it tries again.
	restMax = 64
	// holdBackAtMost bounds one hold: a reader that does not wake the
	// source (one outside the pipeline) costs it this at most.
	holdBackAtMost = time.Millisecond
)

// pacer paces a source whose fn is user code: Produce, FromSeq and the
// reader sources (Generate's and FromChan's loops never work between their
// emits). A new source counts as busy; every paceEvery emits the pacer
// judges afresh whether it is, and whether holding back costs it too much.
// A source given [BufferSize], or on a pipeline given [DefaultBuffer], only
// yields: its buffer is what it asked for.
//
// Why: a receiver woken by a send waits for a processor, and the runtime
// gives it the sender's. A busy source keeps it, so the item waits until
// the receiver is stolen by the other processor (the yield). A producer
// that emits in bursts (one that sleeps oversleeps, then catches up) fills
// the buffer with the burst, and each item waits for those ahead of it. And
// when a stage downstream is stranded (its goroutine runnable on a
// processor whose thread the host has paused), a busy source keeps its own
// processor from ever going idle to take it, and fills the buffers behind
// it for milliseconds. An unbuffered pipeline blocks its source at once, so
// each of these costs it microseconds; holding back does the same.
type pacer struct {
	hold bool        // the source's output has the default capacity: it may hold back
	mu   sync.Mutex  // held by the emit that judges or holds back; a concurrent emit of the same source does neither
	busy atomic.Bool // its emits came busyAfter or more apart, smoothed over windows
	// Under mu:
	mark    time.Duration // monotonic() at the start of the window; 0: none yet
	gap     time.Duration // mean time between emits, smoothed over windows
	held    time.Duration // time held back in the window
	heldAll float64       // time held back, over about paceHorizon
	spanAll float64       // time, over the same
	rest    int           // windows left without holding back
	backoff int           // the rest the source took last
	wake    chan struct{} // a token from a stage that took an item (see Pipeline.took)
	timer   *time.Timer   // bounds a hold
	atMost  time.Duration // the bound: holdBackAtMost
	seen    int           // stages in the pipeline when watch was made
	watch   []queuer      // the source's output and those downstream of it that stages read
	readers []*stage      // the stages reading the source's output
}

// newPacer returns the pacer of a source; hold says whether it may hold
// back (only yield, if not).
func newPacer(hold bool) *pacer {
	pc := &pacer{hold: hold, wake: make(chan struct{}, 1), atMost: holdBackAtMost}
	pc.busy.Store(true)
	return pc
}

// emitted is called once the source has sent its n-th item. src is the
// source's stage, stop what ends a hold besides cancellation (nil: only
// that and the bound).
func (pc *pacer) emitted(p *Pipeline, src *stage, n uint64, stop <-chan struct{}) {
	window := n%paceEvery == 1
	if !window && !pc.busy.Load() {
		return
	}
	if !pc.mu.TryLock() {
		return
	}
	defer pc.mu.Unlock()
	if window {
		pc.judge(monotonic())
	}
	if !pc.busy.Load() {
		return
	}
	runtime.Gosched()
	if pc.hold && pc.rest == 0 && pc.stalled(p, src, n) {
		src.ctr[0].sendWait.Add(int64(pc.holdBack(p, src, n, stop))) // a source has one worker
	}
}

// judge closes the window that ends at now: the source is busy if its
// emits came busyAfter apart or more, smoothed over windows; it rests if it
// held back more than heldShareMax of its time over about paceHorizon, for
// twice as many windows as it rested last (up to restMax), and judges
// afresh after.
func (pc *pacer) judge(now time.Duration) {
	if pc.mark == 0 {
		pc.mark = now
		return
	}
	span := now - pc.mark
	pc.mark = now
	gap := span / paceEvery
	if pc.gap != 0 {
		gap = (3*pc.gap + gap) / 4
	}
	pc.gap = gap
	pc.busy.Store(gap >= busyAfter)
	pc.weigh(span, pc.held)
	pc.held = 0
}

// weigh takes a window of span in which the source held back for held.
func (pc *pacer) weigh(span, held time.Duration) {
	if pc.rest > 0 {
		if pc.rest--; pc.rest == 0 {
			pc.heldAll, pc.spanAll = 0, 0
		}
		return
	}
	f := min(float64(span)/float64(paceHorizon), 1)
	pc.heldAll = pc.heldAll*(1-f) + float64(held)
	pc.spanAll = pc.spanAll*(1-f) + float64(span)
	if pc.heldAll > heldShareMax*pc.spanAll {
		pc.backoff = min(max(2*pc.backoff, 1), restMax)
		pc.rest = pc.backoff
	} else {
		pc.backoff /= 2
	}
}

// stalled reports whether an item the source sent still waits: fewer than
// sent taken by the stages reading it, or an item in its output or in one
// downstream of it.
func (pc *pacer) stalled(p *Pipeline, src *stage, sent uint64) bool {
	pc.look(p, src)
	if len(pc.readers) > 0 {
		var taken uint64
		for _, r := range pc.readers {
			for i := range r.ctr {
				taken += r.ctr[i].in.Load()
			}
		}
		if taken < sent {
			return true
		}
	}
	for _, q := range pc.watch {
		if l, _ := q.queue(); l > 0 {
			return true
		}
	}
	return false
}

// readersAtMost bounds the counters stalled sums: the items taken by wider
// readers are not counted (their queues still are).
const readersAtMost = 64

// look updates watch and readers if stages were added since it last did.
// An output is watched if as many stages read it as it has channels, so
// that every item taken from it wakes the source; one read from outside
// the pipeline (the last stage's, say) is not.
func (pc *pacer) look(p *Pipeline, src *stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.stages)
	if n == pc.seen {
		return
	}
	pc.seen = n
	// by position in p.stages (creation order: a stage's inputs come
	// first): whether it is downstream of src, and how many stages read it
	var few [32]int32
	read := few[:0]
	if n > len(few) {
		read = make([]int32, 0, n)
	}
	read = read[:n]
	at := func(s *stage) int { return s.index - 1 }
	const down = 1 << 30
	read[at(src)] = down
	pc.readers, pc.watch = pc.readers[:0], pc.watch[:0]
	width := 0
	for _, s := range p.stages {
		for _, u := range s.inputs {
			read[at(u)]++
			if read[at(u)] >= down {
				read[at(s)] |= down
			}
			if u == src && width+len(s.ctr) <= readersAtMost {
				pc.readers = append(pc.readers, s)
				width += len(s.ctr)
			}
		}
	}
	for i, s := range p.stages {
		if read[i] >= down && s.queue != nil && int(read[i]-down) >= len(s.outs) {
			pc.watch = append(pc.watch, s.queue)
		}
	}
}

// holdBack parks the source until nothing it sent waits, a stage taking an
// item waking it to look again; or until the pipeline is cancelled, stop
// is closed, or atMost has passed. It returns how long that took.
func (pc *pacer) holdBack(p *Pipeline, src *stage, sent uint64, stop <-chan struct{}) (held time.Duration) {
	start := monotonic()
	defer func() {
		held = monotonic() - start
		pc.held += held
	}()
	if pc.timer == nil {
		pc.timer = time.NewTimer(pc.atMost)
	} else {
		pc.timer.Reset(pc.atMost)
	}
	defer pc.timer.Stop()
	w := &pc.wake
	for {
		select { // a token from a take that came after the last look
		case <-pc.wake:
		default:
		}
		if !p.paced.CompareAndSwap(nil, w) {
			return // another source holds back: this one only yields
		}
		if !pc.stalled(p, src, sent) {
			p.paced.CompareAndSwap(w, nil)
			return
		}
		select {
		case <-pc.wake:
			continue
		case <-pc.timer.C:
		case <-p.done:
		case <-stop:
		}
		p.paced.CompareAndSwap(w, nil)
		return
	}
}

// took counts k items taken from a stage's input on t, and wakes the
// source holding back, if one is.
func (p *Pipeline) took(t *counters, k uint64) {
	t.in.Add(k)
	if p.paced.Load() != nil {
		p.wakePaced()
	}
}

func (p *Pipeline) wakePaced() {
	if w := p.paced.Load(); w != nil && p.paced.CompareAndSwap(w, nil) {
		select {
		case *w <- struct{}{}:
		default:
		}
	}
}
