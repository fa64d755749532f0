package pipeline_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
)

// The chaos run and FuzzPipeline share one interpreter: a byte string
// decodes to a random pipeline (sources, a chain of stages with Tee and
// Partition branches merged back, a sink, faults to inject and an action —
// Stop, a parent cancel or a Shutdown — at a random moment), which relExec
// builds, runs and checks:
//
//   - it finishes within a generous bound, and no goroutine is left;
//   - it fails if and only if an injected failure happened or the parent was
//     cancelled (or a Shutdown ran out of time), and with that error;
//   - when it succeeds (also after Stop): every stage conserves items
//     (In = Out + Dropped + Errors), every channel carries what its producer
//     sent, nothing is still busy, and the sink sees exactly the items the
//     sources emitted, transformed (a subset of them after DropOnFull);
//   - no stage ever runs more calls than its workers, nor the stages sharing
//     the Limiter more than its slots.
//
// Sinks that end early on purpose (First, a break out of All) are not
// failures: those runs check bounds, leaks and the kind of error only.
//
// Every byte string is a valid program: reading past its end yields zeros.

// relRuns is how many random pipelines TestChaos_RandomPipelines runs;
// PIPELINE_SOAK=N runs N instead.
const relRuns = 2000

// relBound is how long one pipeline may take before it counts as hung.
const relBound = 20 * time.Second

var (
	errRelInjected = errors.New("rel: injected failure")
	errRelCancel   = errors.New("rel: parent cancelled")
)

// relPanicValue is what injected panics panic with.
const relPanicValue = "rel: injected panic"

// Stage kinds of the interpreter.
const (
	relFanOut = iota
	relFanOutOrdered
	relFlatMap
	relFilter
	relBuffer
	relDropOnFull
	relThrottle
	relBatch // Batch then Unbatch
	relTee
	relPartition
	relKinds
)

var relKindNames = [...]string{"fanout", "fanoutordered", "flatmap", "filter", "buffer", "droponfull", "throttle", "batch+unbatch", "tee", "partition"}

// Faults a user function can be given.
const (
	relNoFault   = iota
	relError     // the call number at fails the pipeline
	relPanic     // the call number at panics
	relSkip      // some items fail and OnError skips them
	relTransient // the first call on each value fails, Retry re-runs it
)

var relFaultNames = [...]string{"", "error", "panic", "skip", "transient"}

type relFault struct{ kind, at int }

func (f relFault) String() string {
	if f.kind == relNoFault {
		return ""
	}
	return fmt.Sprintf(" %s@%d", relFaultNames[f.kind], f.at)
}

// fatal reports whether the fault fails the pipeline when it happens.
func (f relFault) fatal() bool { return f.kind == relError || f.kind == relPanic }

// Sources.
const (
	relGenerate = iota
	relFromSeq
	relFromChan
	relProduce
	relSourceKinds
)

var relSourceNames = [...]string{"generate", "fromseq", "fromchan", "produce"}

// Sinks.
const (
	relCollect = iota
	relAll
	relForEach
	relReduce
	relDrain
	relFirst    // early exit: not a failure
	relAllBreak // early exit: breaks out of the range after sinkWorkers items
	relSinkKinds
)

var relSinkNames = [...]string{"collect", "all", "foreach", "reduce", "drain", "first", "all+break"}

// Actions, fired at a random moment.
const (
	relNone = iota
	relStop
	relCancel
	relStopThenCancel
	relShutdown // Shutdown with a short deadline, from another goroutine
	relActions
)

var relActionNames = [...]string{"none", "stop", "cancel", "stop+cancel", "shutdown"}

type relSource struct {
	kind  int
	n     int
	base  int64
	fault relFault // Produce: error or panic after at emits; FromSeq: panic

	idx     int        // stats index, once built
	ch      chan int64 // FromChan's channel
	emitted []int64    // what Produce's emit accepted
}

type relStep struct {
	kind     int
	workers  int
	size     int           // queue size, batch size or burst
	wait     time.Duration // batch maxWait or throttle interval
	limited  bool          // holds a slot of the shared limiter per call
	salt     uint64
	fault    relFault
	branches [][]*relStep // Tee and Partition: one chain per output

	idx, mergeIdx int // stats indexes, once built
	calls         atomic.Int64
	gauge         relGauge
	failedOnce    sync.Map // relTransient: values that already failed once
}

type relProg struct {
	buf         int // DefaultBuffer, or -1 for the default
	sources     []*relSource
	chain       []*relStep
	sink        int
	sinkWorkers int
	sinkFault   relFault
	sinkSalt    uint64
	action      int
	trigger     int           // fire the action at this user-function call
	delay       time.Duration // > 0: fire it after this long instead
	async       bool          // fire it from another goroutine
	slots       int           // the shared limiter's size
	stages      int
}

// relReader decodes a program from bytes; past the end it reads zeros.
type relReader struct {
	b []byte
	i int
}

func (r *relReader) byte() byte {
	if r.i >= len(r.b) {
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *relReader) n(k int) int { return int(r.byte()) % k }

func (r *relReader) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(r.byte())
	}
	return v
}

func (r *relReader) fault(calls bool) relFault {
	f := relFault{at: r.n(48)}
	switch x := r.n(20); {
	case x < 13:
	case x < 15:
		f.kind = relError
	case x < 17:
		f.kind = relPanic
	case x < 19:
		f.kind = relSkip
	default:
		f.kind = relTransient
	}
	if !calls && f.kind != relPanic {
		f.kind = relNoFault // Filter, Partition: the function can only panic
	}
	return f
}

const (
	relMaxStages = 14
	relMaxDepth  = 2
	relMaxItems  = 80
)

func relDecode(b []byte) *relProg {
	r := &relReader{b: b}
	pr := &relProg{buf: [...]int{-1, 0, 1, 3}[r.n(4)]}
	for i := range 1 + r.n(3) {
		s := &relSource{kind: r.n(relSourceKinds), n: r.n(relMaxItems + 1), base: int64(i) << 32}
		switch s.kind {
		case relProduce:
			if f := r.fault(true); f.fatal() {
				s.fault = f
			}
		case relFromSeq:
			if f := r.fault(false); f.kind == relPanic {
				s.fault = f
			}
		}
		pr.sources = append(pr.sources, s)
	}
	pr.chain = pr.decodeChain(r, 0, 1+r.n(6))
	pr.sink = r.n(relSinkKinds)
	pr.sinkWorkers = 1 + r.n(4)
	pr.sinkSalt = r.u64()
	switch pr.sink {
	case relForEach:
		pr.sinkFault = r.fault(true)
	case relReduce:
		if f := r.fault(false); f.kind == relPanic {
			pr.sinkFault = f
		}
	}
	pr.action = r.n(relActions)
	pr.trigger = r.n(160)
	if r.n(3) == 0 {
		pr.delay = time.Duration(1+r.n(200)) * 10 * time.Microsecond
	}
	pr.async = r.n(2) == 1
	pr.slots = 1 + r.n(4)
	return pr
}

func (pr *relProg) decodeChain(r *relReader, depth, length int) []*relStep {
	var chain []*relStep
	for range length {
		if pr.stages >= relMaxStages {
			break
		}
		pr.stages++
		s := &relStep{kind: r.n(relKinds), workers: 1 + r.n(6), size: 1 + r.n(8), salt: r.u64()}
		switch s.kind {
		case relFanOut, relFanOutOrdered, relFlatMap:
			s.fault = r.fault(true)
			s.limited = r.n(3) == 0
		case relFilter:
			s.fault = r.fault(false)
		case relThrottle:
			s.wait = time.Duration(1+r.n(20)) * time.Microsecond
			s.size = 1 + r.n(32)
		case relBatch:
			s.wait = time.Duration(r.n(4)) * 40 * time.Microsecond
		case relTee, relPartition:
			if depth >= relMaxDepth {
				s.kind = relBuffer
				break
			}
			if s.kind == relPartition {
				s.fault = r.fault(false)
			}
			for range 1 + r.n(3) {
				s.branches = append(s.branches, pr.decodeChain(r, depth+1, r.n(3)))
			}
		}
		chain = append(chain, s)
	}
	return chain
}

func (pr *relProg) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "buf=%d sources=[", pr.buf)
	for i, s := range pr.sources {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s(%d)%v", relSourceNames[s.kind], s.n, s.fault)
	}
	b.WriteString("] ")
	relWriteChain(&b, pr.chain)
	fmt.Fprintf(&b, " → %s(w%d)%v; %s at ", relSinkNames[pr.sink], pr.sinkWorkers, pr.sinkFault, relActionNames[pr.action])
	if pr.delay > 0 {
		fmt.Fprintf(&b, "%v", pr.delay)
	} else {
		fmt.Fprintf(&b, "call %d", pr.trigger)
	}
	fmt.Fprintf(&b, " async=%v slots=%d", pr.async, pr.slots)
	return b.String()
}

func relWriteChain(b *strings.Builder, chain []*relStep) {
	b.WriteString("[")
	for i, s := range chain {
		if i > 0 {
			b.WriteString(" → ")
		}
		fmt.Fprintf(b, "%s(w%d s%d %v)%v", relKindNames[s.kind], s.workers, s.size, s.wait, s.fault)
		if s.limited {
			b.WriteString("+limit")
		}
		for _, br := range s.branches {
			relWriteChain(b, br)
		}
	}
	b.WriteString("]")
}

// relCount is how many items went through a channel, from the stats after
// the run; ok is false when the stats cannot tell (a Partition output).
type relCount func(st []pipeline.StageStats) (n uint64, ok bool)

func relOut(idx int) relCount {
	return func(st []pipeline.StageStats) (uint64, bool) { return st[idx].Out, true }
}

// relRun is one execution of a program.
type relRun struct {
	pr     *relProg
	p      *pipeline.Pipeline
	cancel context.CancelCauseFunc
	lim    *pipeline.Limiter
	limG   relGauge

	events    atomic.Int64
	faulted   atomic.Bool // a fatal fault happened
	stopped   atomic.Bool
	cancelled atomic.Bool
	deadline  atomic.Bool // a Shutdown ran out of time
	fired     sync.Once
	armed     atomic.Bool
	actions   sync.WaitGroup // actions fired from other goroutines

	shutdownErr error
	shutdownRan bool
	checks      []func(st []pipeline.StageStats) error
	inexact     bool // a DropOnFull sheds items: the sink gets a subset

	sinkIdx  int      // the ForEach stage, or -1
	sinkStep *relStep // the ForEach sink's function
	seen     map[int64]int
	seenN    int
	observed bool // the sink lets us see the items
}

// tick counts a user-function call and fires the action when its turn comes.
func (r *relRun) tick() {
	if n := r.events.Add(1); r.pr.delay == 0 && int(n) >= r.pr.trigger && r.armed.Load() {
		r.fire()
	}
}

// arm lets the action fire once the pipeline is built: stages built after
// Shutdown's Wait would fail (as documented), which is not what a run tests.
// Stop and cancel may fire while stages are still being built.
func (r *relRun) arm() {
	r.armed.Store(true)
	if r.pr.delay == 0 && int(r.events.Load()) >= r.pr.trigger {
		r.fire()
	}
}

func (r *relRun) fire() {
	r.fired.Do(func() {
		// Shutdown waits for the pipeline, so it must not run on one of the
		// pipeline's own goroutines.
		if r.pr.async || r.pr.action == relShutdown {
			r.actions.Add(1)
			go func() {
				defer r.actions.Done()
				r.act()
			}()
			return
		}
		r.act()
	})
}

func (r *relRun) act() {
	switch r.pr.action {
	case relStop:
		r.stopped.Store(true)
		r.p.Stop()
	case relCancel:
		r.cancelled.Store(true)
		r.cancel(errRelCancel)
	case relStopThenCancel:
		r.stopped.Store(true)
		r.p.Stop()
		runtime.Gosched()
		r.cancelled.Store(true)
		r.cancel(errRelCancel)
	case relShutdown:
		r.stopped.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.pr.trigger)*5*time.Microsecond)
		defer cancel()
		r.deadline.Store(true) // it may run out of time
		r.shutdownErr = r.p.Shutdown(ctx)
		r.shutdownRan = true
	}
}

// call wraps every stage function: it counts the call, injects the step's
// fault, and measures concurrency.
func (r *relRun) call(s *relStep, v int64) error {
	r.tick()
	s.gauge.enter()
	defer s.gauge.exit()
	if s.limited {
		r.limG.enter()
		defer r.limG.exit()
	}
	relJitter(int(v))
	return r.inject(s.fault, &s.calls, &s.failedOnce, s.salt, v)
}

func (r *relRun) inject(f relFault, calls *atomic.Int64, failed *sync.Map, salt uint64, v int64) error {
	n := calls.Add(1) - 1
	switch f.kind {
	case relError:
		if int(n) == f.at {
			r.faulted.Store(true)
			return errRelInjected
		}
	case relPanic:
		if int(n) == f.at {
			r.faulted.Store(true)
			panic(relPanicValue)
		}
	case relSkip:
		if relSkipped(v, salt) {
			return errRelSkip
		}
	case relTransient:
		if _, again := failed.LoadOrStore(v, true); !again {
			return errRelSkip
		}
	}
	return nil
}

func relSkipped(v int64, salt uint64) bool { return relHash(uint64(v), salt^0x5c)%4 == 0 }

func relMap(v int64, salt uint64) int64 { return v + int64(salt%1000) + 1 }

func relCopies(v int64, salt uint64) int { return int(relHash(uint64(v), salt) % 3) }

func relKeep(v int64, salt uint64) bool { return relHash(uint64(v), salt)%4 != 0 }

func relRouteOf(v int64, salt uint64) int {
	switch h := relHash(uint64(v), salt); h % 16 {
	case 0:
		return math.MinInt
	case 1:
		return math.MaxInt
	default:
		return int(h)
	}
}

// opts are the options of a call stage for its fault and limiter.
func (r *relRun) opts(s *relStep) []pipeline.StageOption {
	var o []pipeline.StageOption
	switch s.fault.kind {
	case relSkip:
		o = append(o, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	case relTransient:
		o = append(o, pipeline.Retry(2, func(int) time.Duration { return 0 }))
	}
	if s.limited {
		o = append(o, pipeline.Limit(r.lim))
	}
	return o
}

func (r *relRun) next() int { return len(r.p.Stats()) }

func (r *relRun) expect(format string, cond func(st []pipeline.StageStats) bool, args ...func(st []pipeline.StageStats) any) {
	r.checks = append(r.checks, func(st []pipeline.StageStats) error {
		if cond(st) {
			return nil
		}
		vals := make([]any, len(args))
		for i, a := range args {
			vals[i] = a(st)
		}
		return fmt.Errorf(format, vals...)
	})
}

// expectIn checks that stage idx took in exactly what its input carried.
func (r *relRun) expectIn(idx int, in relCount) {
	r.expect("stage %v took in %v items, its input carried %v", func(st []pipeline.StageStats) bool {
		n, ok := in(st)
		return !ok || st[idx].In == n
	}, func(st []pipeline.StageStats) any { return st[idx].Name },
		func(st []pipeline.StageStats) any { return st[idx].In },
		func(st []pipeline.StageStats) any { n, _ := in(st); return n })
}

func (r *relRun) buildSource(s *relSource) <-chan int64 {
	items := make([]int64, s.n)
	for i := range items {
		items[i] = s.base + int64(i)
	}
	s.idx = r.next()
	switch s.kind {
	case relGenerate:
		return pipeline.Generate(r.p, items...)
	case relFromSeq:
		return pipeline.FromSeq(r.p, func(yield func(int64) bool) {
			for i, v := range items {
				r.tick()
				if s.fault.kind == relPanic && i == s.fault.at {
					r.faulted.Store(true)
					panic(relPanicValue)
				}
				if !yield(v) {
					return
				}
			}
		})
	case relFromChan:
		s.ch = make(chan int64, len(items))
		for _, v := range items {
			s.ch <- v
		}
		close(s.ch)
		return pipeline.FromChan(r.p, s.ch)
	default:
		return pipeline.Produce(r.p, func(_ context.Context, emit func(int64) error) error {
			for i, v := range items {
				r.tick()
				if i == s.fault.at {
					switch s.fault.kind {
					case relError:
						r.faulted.Store(true)
						return errRelInjected
					case relPanic:
						r.faulted.Store(true)
						panic(relPanicValue)
					}
				}
				if err := emit(v); err != nil {
					return err
				}
				s.emitted = append(s.emitted, v)
			}
			return nil
		})
	}
}

// buildChain builds chain on in, whose item count is inCount. It returns the
// chain's output and its count, and the count the chain's first stage took
// in (nil for an empty chain).
func (r *relRun) buildChain(chain []*relStep, in <-chan int64, inCount relCount) (<-chan int64, relCount, relCount) {
	var firstIn relCount
	for i, s := range chain {
		s.idx = r.next()
		if i == 0 {
			idx := s.idx
			firstIn = func(st []pipeline.StageStats) (uint64, bool) { return st[idx].In, true }
		}
		r.expectIn(s.idx, inCount)
		in, inCount = r.buildStep(s, in)
	}
	return in, inCount, firstIn
}

func (r *relRun) buildStep(s *relStep, in <-chan int64) (<-chan int64, relCount) {
	p := r.p
	switch s.kind {
	case relFanOut, relFanOutOrdered:
		fn := func(_ context.Context, v int64) (int64, error) {
			if err := r.call(s, v); err != nil {
				return 0, err
			}
			return relMap(v, s.salt), nil
		}
		if s.kind == relFanOut {
			return pipeline.FanOut(p, in, s.workers, fn, r.opts(s)...), relOut(s.idx)
		}
		return pipeline.FanOutOrdered(p, in, s.workers, fn, r.opts(s)...), relOut(s.idx)
	case relFlatMap:
		return pipeline.FlatMap(p, in, s.workers, func(_ context.Context, v int64, emit func(int64) error) error {
			if err := r.call(s, v); err != nil {
				return err
			}
			for j := range relCopies(v, s.salt) {
				if err := emit(v*4 + int64(j)); err != nil {
					return err
				}
			}
			return nil
		}, r.opts(s)...), relOut(s.idx)
	case relFilter:
		return pipeline.Filter(p, in, func(v int64) bool {
			r.tick()
			_ = r.inject(s.fault, &s.calls, nil, s.salt, v)
			return relKeep(v, s.salt)
		}), relOut(s.idx)
	case relBuffer:
		return pipeline.Buffer(p, in, s.size), relOut(s.idx)
	case relDropOnFull:
		r.inexact = true
		return pipeline.DropOnFull(p, in, s.size), relOut(s.idx)
	case relThrottle:
		return pipeline.Throttle(p, in, s.wait, s.size), relOut(s.idx)
	case relBatch:
		b := pipeline.Batch(p, in, s.size, s.wait)
		u := r.next()
		r.expectIn(u, relOut(s.idx))
		return pipeline.Unbatch(p, b), relOut(u)
	case relTee:
		outs := pipeline.Tee(p, in, len(s.branches))
		return r.buildBranches(s, outs, relOut(s.idx))
	default: // relPartition
		outs := pipeline.Partition(p, in, len(s.branches), func(v int64) int {
			r.tick()
			_ = r.inject(s.fault, &s.calls, nil, s.salt, v)
			return relRouteOf(v, s.salt)
		})
		return r.buildBranches(s, outs, nil)
	}
}

// buildBranches builds one chain per output of a Tee (each output carries
// the Tee's Out) or a Partition (outCount nil: the outputs share its Out) and
// merges them back.
func (r *relRun) buildBranches(s *relStep, outs []<-chan int64, outCount relCount) (<-chan int64, relCount) {
	unknown := relCount(func([]pipeline.StageStats) (uint64, bool) { return 0, false })
	ends := make([]<-chan int64, len(outs))
	var counts, firsts []relCount
	empty := 0
	for i, o := range outs {
		c := outCount
		if c == nil {
			c = unknown
		}
		var end, first relCount
		ends[i], end, first = r.buildChain(s.branches[i], o, c)
		if first == nil {
			empty++
			continue
		}
		counts, firsts = append(counts, end), append(firsts, first)
	}
	s.mergeIdx = r.next()
	split, merge := s.idx, s.mergeIdx
	r.expectIn(merge, func(st []pipeline.StageStats) (uint64, bool) {
		var n uint64
		for _, c := range counts {
			v, _ := c(st)
			n += v
		}
		if outCount != nil { // Tee: each empty branch carries all of it
			return n + uint64(empty)*st[split].Out, true
		}
		// Partition: empty branches carry what the others did not take.
		rest := st[split].Out
		for _, f := range firsts {
			v, _ := f(st)
			rest -= v
		}
		return n + rest, true
	})
	return pipeline.Merge(r.p, ends...), relOut(merge)
}

// relResult is what a run produced.
type relResult struct {
	err      error
	problems []string
	outcome  string // for the statistics of a chaos run
}

// outcome names how the run ended, for the statistics of a chaos run.
func (r *relRun) outcome(err error) string {
	var pe *pipeline.PanicError
	switch {
	case errors.Is(err, errRelInjected):
		return "failed:error"
	case errors.As(err, &pe):
		return "failed:panic"
	case errors.Is(err, errRelCancel):
		return "failed:cancel"
	case errors.Is(err, context.DeadlineExceeded):
		return "failed:shutdown-deadline"
	case err != nil:
		return "failed:other"
	case r.pr.sink == relFirst || r.pr.sink == relAllBreak:
		return "ok:early-exit"
	case r.stopped.Load():
		return "ok:stopped"
	}
	return "ok"
}

// relExec builds and runs the program encoded by data and returns every
// broken promise it found. A run that does not finish within bound is
// reported with every goroutine's stack.
func relExec(data []byte, bound time.Duration) (problems []string, outcome string) {
	ignore := goleak.IgnoreCurrent()
	pr := relDecode(data)
	done := make(chan relResult, 1)
	r := &relRun{pr: pr}
	go func() { done <- r.run() }()
	var res relResult
	select {
	case res = <-done:
	case <-time.After(bound):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return []string{fmt.Sprintf("did not finish within %v: %s\n%s", bound, pr, buf)}, "hung"
	}
	if err := goleak.Find(ignore); err != nil {
		res.problems = append(res.problems, fmt.Sprintf("goroutines left behind: %v", err))
	}
	for i, p := range res.problems {
		res.problems[i] = fmt.Sprintf("%s\n  program: %s\n  bytes: %s\n  error: %v", p, pr, hex.EncodeToString(data), res.err)
	}
	return res.problems, res.outcome
}

func (r *relRun) run() relResult {
	pr := r.pr
	parent, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r.cancel = cancel
	var opts []pipeline.Option
	if pr.buf >= 0 {
		opts = append(opts, pipeline.DefaultBuffer(pr.buf))
	}
	r.p = pipeline.New(parent, opts...)
	r.lim = pipeline.NewLimiter(pr.slots)
	r.sinkIdx = -1

	r.armed.Store(pr.action != relShutdown)
	var timer *time.Timer
	if pr.delay > 0 && pr.action != relNone {
		r.actions.Add(1)
		timer = time.AfterFunc(pr.delay, func() {
			defer r.actions.Done()
			if r.armed.Load() {
				r.fire()
			}
		})
	}

	srcs := make([]<-chan int64, len(pr.sources))
	for i, s := range pr.sources {
		srcs[i] = r.buildSource(s)
	}
	in, inCount := srcs[0], relOut(pr.sources[0].idx)
	if len(srcs) > 1 {
		m := r.next()
		r.expectIn(m, func(st []pipeline.StageStats) (uint64, bool) {
			var n uint64
			for _, s := range pr.sources {
				n += st[s.idx].Out
			}
			return n, true
		})
		in, inCount = pipeline.Merge(r.p, srcs...), relOut(m)
	}
	out, outCount, _ := r.buildChain(pr.chain, in, inCount)
	if pr.sink != relForEach { // ForEach builds its stage as it runs
		r.arm()
	}
	err := r.runSink(out)
	if timer != nil && timer.Stop() {
		r.actions.Done()
	}
	r.actions.Wait()
	return relResult{err: err, problems: r.verify(err, outCount), outcome: r.outcome(err)}
}

func (r *relRun) runSink(out <-chan int64) error {
	p, pr := r.p, r.pr
	r.seen = map[int64]int{}
	see := func(v int64) {
		r.seen[v]++
		r.seenN++
	}
	switch pr.sink {
	case relCollect:
		got, err := pipeline.Collect(p, out)
		for _, v := range got {
			see(v)
		}
		r.observed = true
		return err
	case relAll:
		for v := range pipeline.All(p, out) {
			r.tick()
			see(v)
		}
		r.observed = true
		return p.Wait()
	case relForEach:
		var mu sync.Mutex
		s := &relStep{workers: pr.sinkWorkers, fault: pr.sinkFault, salt: pr.sinkSalt}
		r.sinkIdx = r.next()
		err := pipeline.ForEach(p, out, pr.sinkWorkers, func(_ context.Context, v int64) error {
			if !r.armed.Load() {
				r.arm() // the ForEach stage exists once its function runs
			}
			if err := r.call(s, v); err != nil {
				return err
			}
			mu.Lock()
			see(v)
			mu.Unlock()
			return nil
		}, r.opts(s)...)
		r.sinkStep = s
		r.observed = true
		return err
	case relReduce:
		var calls atomic.Int64
		acc, err := pipeline.Reduce(p, out, map[int64]int{}, func(m map[int64]int, v int64) map[int64]int {
			r.tick()
			_ = r.inject(pr.sinkFault, &calls, nil, 0, v)
			m[v]++
			return m
		})
		for v, n := range acc {
			r.seen[v] += n
			r.seenN += n
		}
		r.observed = true
		return err
	case relFirst:
		_, _, err := pipeline.First(p, out)
		return err
	case relAllBreak:
		n := 0
		for range pipeline.All(p, out) {
			r.tick()
			if n++; n >= pr.sinkWorkers {
				break
			}
		}
		return p.Wait()
	default:
		return pipeline.Drain(p, out)
	}
}

// verify checks a finished run against its promises.
func (r *relRun) verify(err error, outCount relCount) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	st := r.p.Stats()

	// Concurrency bounds hold whatever happened.
	relWalk(r.pr.chain, func(s *relStep) {
		if peak := s.gauge.peak.Load(); peak > int64(s.workers) {
			bad("%s ran %d calls at once with %d workers", relKindNames[s.kind], peak, s.workers)
		}
	})
	if s := r.sinkStep; s != nil && s.gauge.peak.Load() > int64(s.workers) {
		bad("ForEach ran %d calls at once with %d workers", s.gauge.peak.Load(), s.workers)
	}
	if peak := r.limG.peak.Load(); peak > int64(r.pr.slots) {
		bad("stages sharing a limiter of %d slots ran %d calls at once", r.pr.slots, peak)
	}
	if n := r.lim.InUse(); n != 0 {
		bad("the limiter still holds %d slots after Wait", n)
	}
	for _, s := range st {
		if s.Busy != 0 {
			bad("stage %s is busy with %d calls after Wait", s.Name, s.Busy)
		}
	}

	// The error says what happened, and only that. After an early exit
	// (First, a break out of All), a failure may come after the exit and
	// be a consequence of it: nil is then a valid result too.
	faulted, cancelled, deadline := r.faulted.Load(), r.cancelled.Load(), r.deadline.Load()
	early := r.pr.sink == relFirst || r.pr.sink == relAllBreak
	var pe *pipeline.PanicError
	switch {
	case err == nil && faulted && !early:
		bad("an injected failure happened but Wait returned nil")
	case err != nil:
		ok := faulted && (errors.Is(err, errRelInjected) || errors.As(err, &pe) && pe.Value == relPanicValue)
		ok = ok || cancelled && errors.Is(err, errRelCancel)
		ok = ok || deadline && errors.Is(err, context.DeadlineExceeded)
		if !ok {
			bad("unexpected error %v (faulted=%v cancelled=%v shutdown deadline=%v)", err, faulted, cancelled, deadline)
		}
		var se *pipeline.StageError
		if faulted && errors.Is(err, errRelInjected) && !errors.As(err, &se) {
			bad("an injected error arrived without its *StageError: %v", err)
		}
	}
	if again := r.p.Wait(); again != err {
		bad("Wait returned %v after the sink returned %v", again, err)
	}
	// Shutdown returns Wait's result, or ctx.Err() if its deadline came first.
	if r.shutdownRan && r.shutdownErr != err && !errors.Is(r.shutdownErr, context.DeadlineExceeded) {
		bad("Shutdown returned %v, Wait %v", r.shutdownErr, err)
	}
	if err != nil || early {
		return problems
	}

	// A successful run (also after Stop) lost nothing.
	for _, s := range r.pr.sources {
		out := st[s.idx].Out
		if !r.stopped.Load() && out != uint64(s.n) {
			bad("source %s emitted %d of %d items without Stop", st[s.idx].Name, out, s.n)
		}
		if s.kind == relFromChan && out+uint64(len(s.ch)) != uint64(s.n) {
			bad("FromChan emitted %d of %d values and left %d in the channel: the rest is lost", out, s.n, len(s.ch))
		}
	}
	for _, s := range st {
		if s.Kind != "flatmap" && s.In != s.Out+s.Dropped+s.Errors {
			bad("stage %s: In %d != Out %d + Dropped %d + Errors %d", s.Name, s.In, s.Out, s.Dropped, s.Errors)
		}
	}
	for _, c := range r.checks {
		if e := c(st); e != nil {
			bad("%v", e)
		}
	}
	final, _ := outCount(st)
	if r.sinkIdx >= 0 {
		fe := st[r.sinkIdx]
		if fe.In != final {
			bad("ForEach took in %d items, its input carried %d", fe.In, final)
		}
		final = fe.Out // handled, not skipped
	}
	if r.observed && uint64(r.seenN) != final {
		bad("the sink saw %d items, the last stage sent %d", r.seenN, final)
	}
	if r.observed {
		want := r.simulate(st)
		for v, n := range r.seen {
			if n > want[v] {
				bad("the sink saw %d × %d, expected at most %d", v, n, want[v])
				break
			}
		}
		if !r.inexact && !relEqualCounts(want, r.seen) {
			bad("the sink saw %d items, expected %d (no DropOnFull: exactly the emitted items, transformed)", r.seenN, relSize(want))
		}
	}
	return problems
}

// relWalk calls f on every step of chain and of its branches.
func relWalk(chain []*relStep, f func(*relStep)) {
	for _, s := range chain {
		f(s)
		for _, br := range s.branches {
			relWalk(br, f)
		}
	}
}

// simulate computes the multiset the sink must see from what the sources
// actually emitted, applying every stage's function.
func (r *relRun) simulate(st []pipeline.StageStats) map[int64]int {
	ms := map[int64]int{}
	for _, s := range r.pr.sources {
		if s.kind == relProduce {
			for _, v := range s.emitted {
				ms[v]++
			}
			continue
		}
		for i := range int(st[s.idx].Out) { // these sources emit a prefix, in order
			ms[s.base+int64(i)]++
		}
	}
	ms = relSimChain(r.pr.chain, ms)
	if r.pr.sink == relForEach && r.pr.sinkFault.kind == relSkip {
		for v := range ms {
			if relSkipped(v, r.pr.sinkSalt) {
				delete(ms, v)
			}
		}
	}
	return ms
}

func relSimChain(chain []*relStep, ms map[int64]int) map[int64]int {
	for _, s := range chain {
		next := map[int64]int{}
		switch s.kind {
		case relFanOut, relFanOutOrdered:
			for v, n := range ms {
				if s.fault.kind != relSkip || !relSkipped(v, s.salt) {
					next[relMap(v, s.salt)] += n
				}
			}
		case relFlatMap:
			for v, n := range ms {
				if s.fault.kind == relSkip && relSkipped(v, s.salt) {
					continue
				}
				for j := range relCopies(v, s.salt) {
					next[v*4+int64(j)] += n
				}
			}
		case relFilter:
			for v, n := range ms {
				if relKeep(v, s.salt) {
					next[v] += n
				}
			}
		case relTee:
			for _, br := range s.branches {
				for v, n := range relSimChain(br, relCopyCounts(ms)) {
					next[v] += n
				}
			}
		case relPartition:
			parts := make([]map[int64]int, len(s.branches))
			for i := range parts {
				parts[i] = map[int64]int{}
			}
			for v, n := range ms {
				parts[relWrap(relRouteOf(v, s.salt), len(parts))][v] += n
			}
			for i, br := range s.branches {
				for v, n := range relSimChain(br, parts[i]) {
					next[v] += n
				}
			}
		default: // Buffer, DropOnFull, Throttle, Batch+Unbatch pass items on
			next = ms
		}
		ms = next
	}
	return ms
}

func relCopyCounts(m map[int64]int) map[int64]int {
	c := make(map[int64]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func relEqualCounts(a, b map[int64]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func relSize(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// relSoakRuns is PIPELINE_SOAK, or runs when unset.
func relSoakRuns(t *testing.T, runs int) int {
	s := os.Getenv("PIPELINE_SOAK")
	if s == "" {
		return runs
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("PIPELINE_SOAK=%q: want a positive number of runs", s)
	}
	return n
}

func TestChaos_RandomPipelines(t *testing.T) {
	runs := relSoakRuns(t, relRuns)
	r := relRand(t)
	start := time.Now()
	failures := 0
	kinds := map[string]int{}
	for i := range runs {
		data := make([]byte, 48+r.IntN(160))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		problems, outcome := relExec(data, relBound)
		kinds[outcome]++
		if len(problems) > 0 {
			failures++
			t.Errorf("run %d: %s", i, strings.Join(problems, "\n"))
			if failures >= 5 {
				t.Fatalf("stopping after %d failed runs of %d", failures, i+1)
			}
		}
		pr := relDecode(data)
		kinds[relActionNames[pr.action]]++
		relWalk(pr.chain, func(s *relStep) { kinds[relKindNames[s.kind]]++ })
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	})
	var mix []string
	for _, k := range keys {
		mix = append(mix, fmt.Sprintf("%s=%d", k, kinds[k]))
	}
	t.Logf("%d runs, %d failed, in %v; mix: %s", runs, failures, time.Since(start).Round(time.Millisecond), strings.Join(mix, " "))
}
