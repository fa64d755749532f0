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
// Stop, a parent cancel or a Shutdown — at a random moment), which chaosExec
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

// chaosRuns is how many random pipelines TestChaos_RandomPipelines runs;
// PIPELINE_SOAK=N runs N instead.
const chaosRuns = 2000

// chaosPanicValue is what injected panics panic with.
const chaosPanicValue = "rel: injected panic"

// Stage kinds of the interpreter.
const (
	chaosFanOut = iota
	chaosFanOutOrdered
	chaosFlatMap
	chaosFilter
	chaosBuffer
	chaosDropOnFull
	chaosThrottle
	chaosBatch // Batch then Unbatch
	chaosTee
	chaosPartition
	chaosKinds
)

var chaosKindNames = [...]string{"fanout", "fanoutordered", "flatmap", "filter", "buffer", "droponfull", "throttle", "batch+unbatch", "tee", "partition"}

// Faults a user function can be given.
const (
	chaosNoFault   = iota
	chaosError     // the call number at fails the pipeline
	chaosPanic     // the call number at panics
	chaosSkip      // some items fail and OnError skips them
	chaosTransient // the first call on each value fails, Retry re-runs it
	chaosGoexit    // the call number at calls runtime.Goexit
)

var chaosFaultNames = [...]string{"", "error", "panic", "skip", "transient", "goexit"}

type chaosFault struct{ kind, at int }

func (f chaosFault) String() string {
	if f.kind == chaosNoFault {
		return ""
	}
	return fmt.Sprintf(" %s@%d", chaosFaultNames[f.kind], f.at)
}

// fatal reports whether the fault fails the pipeline when it happens.
func (f chaosFault) fatal() bool {
	return f.kind == chaosError || f.kind == chaosPanic || f.kind == chaosGoexit
}

// Sources.
const (
	chaosGenerate = iota
	chaosFromSeq
	chaosFromChan
	chaosProduce
	chaosSourceKinds
)

var chaosSourceNames = [...]string{"generate", "fromseq", "fromchan", "produce"}

// Sinks.
const (
	chaosCollect = iota
	chaosAll
	chaosForEach
	chaosReduce
	chaosDrain
	chaosFirst    // early exit: not a failure
	chaosAllBreak // early exit: breaks out of the range after sinkWorkers items
	chaosSinkKinds
)

var chaosSinkNames = [...]string{"collect", "all", "foreach", "reduce", "drain", "first", "all+break"}

// Actions, fired at a random moment.
const (
	chaosNone = iota
	chaosStop
	chaosCancel
	chaosStopThenCancel
	chaosShutdown       // Shutdown with a short deadline, from another goroutine
	chaosShutdownInside // Shutdown with a short deadline, from inside a stage's or sink's function
	chaosActions
)

var chaosActionNames = [...]string{"none", "stop", "cancel", "stop+cancel", "shutdown", "shutdown-inside"}

type chaosSource struct {
	kind  int
	n     int
	base  int64
	fault chaosFault // Produce: error or panic after at emits; FromSeq: panic

	idx     int               // stats index, once built
	ch      chan int64        // FromChan's channel
	emitted []int64           // what Produce's emit accepted
	emit    func(int64) error // Produce's emit, called again once the run has ended
}

type chaosStep struct {
	kind     int
	workers  int
	size     int           // queue size, batch size or burst
	wait     time.Duration // batch maxWait or throttle interval
	limited  bool          // holds a slot of the shared limiter per call
	salt     uint64
	fault    chaosFault
	branches [][]*chaosStep // Tee and Partition: one chain per output

	idx, mergeIdx int // stats indexes, once built
	calls         atomic.Int64
	gauge         gauge
	failedOnce    sync.Map // chaosTransient: values that already failed once
}

type chaosProg struct {
	buf         int // DefaultBuffer, or -1 for the default
	sources     []*chaosSource
	chain       []*chaosStep
	sink        int
	sinkWorkers int
	sinkFault   chaosFault
	sinkSalt    uint64
	action      int
	trigger     int           // fire the action at this user-function call
	delay       time.Duration // > 0: fire it after this long instead
	async       bool          // fire it from another goroutine
	slots       int           // the shared limiter's size
	stages      int
}

// chaosReader decodes a program from bytes; past the end it reads zeros.
type chaosReader struct {
	b []byte
	i int
}

func (r *chaosReader) byte() byte {
	if r.i >= len(r.b) {
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *chaosReader) n(k int) int { return int(r.byte()) % k }

func (r *chaosReader) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(r.byte())
	}
	return v
}

func (r *chaosReader) fault(calls bool) chaosFault {
	f := chaosFault{at: r.n(48)}
	switch x := r.n(21); {
	case x < 13:
	case x < 15:
		f.kind = chaosError
	case x < 17:
		f.kind = chaosPanic
	case x < 19:
		f.kind = chaosSkip
	case x < 20:
		f.kind = chaosTransient
	default:
		f.kind = chaosGoexit
	}
	if !calls && f.kind != chaosPanic && f.kind != chaosGoexit {
		f.kind = chaosNoFault // Filter, Partition: the function can only panic or Goexit
	}
	return f
}

const (
	chaosMaxStages = 14
	chaosMaxDepth  = 2
	chaosMaxItems  = 80
)

func chaosDecode(b []byte) *chaosProg {
	r := &chaosReader{b: b}
	pr := &chaosProg{buf: [...]int{-1, 0, 1, 3}[r.n(4)]}
	for i := range 1 + r.n(3) {
		s := &chaosSource{kind: r.n(chaosSourceKinds), n: r.n(chaosMaxItems + 1), base: int64(i) << 32}
		switch s.kind {
		case chaosProduce:
			if f := r.fault(true); f.fatal() {
				s.fault = f
			}
		case chaosFromSeq:
			if f := r.fault(false); f.kind == chaosPanic {
				s.fault = f
			}
		}
		pr.sources = append(pr.sources, s)
	}
	pr.chain = pr.decodeChain(r, 0, 1+r.n(6))
	pr.sink = r.n(chaosSinkKinds)
	pr.sinkWorkers = 1 + r.n(4)
	pr.sinkSalt = r.u64()
	switch pr.sink {
	case chaosForEach:
		pr.sinkFault = r.fault(true)
	case chaosReduce:
		if f := r.fault(false); f.kind == chaosPanic {
			pr.sinkFault = f
		}
	}
	pr.action = r.n(chaosActions)
	pr.trigger = r.n(160)
	if r.n(3) == 0 {
		pr.delay = time.Duration(1+r.n(200)) * 10 * time.Microsecond
	}
	pr.async = r.n(2) == 1
	pr.slots = 1 + r.n(4)
	return pr
}

func (pr *chaosProg) decodeChain(r *chaosReader, depth, length int) []*chaosStep {
	var chain []*chaosStep
	for range length {
		if pr.stages >= chaosMaxStages {
			break
		}
		pr.stages++
		s := &chaosStep{kind: r.n(chaosKinds), workers: 1 + r.n(6), size: 1 + r.n(8), salt: r.u64()}
		switch s.kind {
		case chaosFanOut, chaosFanOutOrdered, chaosFlatMap:
			s.fault = r.fault(true)
			s.limited = r.n(3) == 0
		case chaosFilter:
			s.fault = r.fault(false)
		case chaosThrottle:
			s.wait = time.Duration(1+r.n(20)) * time.Microsecond
			s.size = 1 + r.n(32)
		case chaosBatch:
			s.wait = time.Duration(r.n(4)) * 40 * time.Microsecond
		case chaosTee, chaosPartition:
			if depth >= chaosMaxDepth {
				s.kind = chaosBuffer
				break
			}
			if s.kind == chaosPartition {
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

func (pr *chaosProg) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "buf=%d sources=[", pr.buf)
	for i, s := range pr.sources {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s(%d)%v", chaosSourceNames[s.kind], s.n, s.fault)
	}
	b.WriteString("] ")
	chaosWriteChain(&b, pr.chain)
	fmt.Fprintf(&b, " → %s(w%d)%v; %s at ", chaosSinkNames[pr.sink], pr.sinkWorkers, pr.sinkFault, chaosActionNames[pr.action])
	if pr.delay > 0 {
		fmt.Fprintf(&b, "%v", pr.delay)
	} else {
		fmt.Fprintf(&b, "call %d", pr.trigger)
	}
	fmt.Fprintf(&b, " async=%v slots=%d", pr.async, pr.slots)
	return b.String()
}

func chaosWriteChain(b *strings.Builder, chain []*chaosStep) {
	b.WriteString("[")
	for i, s := range chain {
		if i > 0 {
			b.WriteString(" → ")
		}
		fmt.Fprintf(b, "%s(w%d s%d %v)%v", chaosKindNames[s.kind], s.workers, s.size, s.wait, s.fault)
		if s.limited {
			b.WriteString("+limit")
		}
		for _, br := range s.branches {
			chaosWriteChain(b, br)
		}
	}
	b.WriteString("]")
}

// chaosCount is how many items went through a channel, from the stats after
// the run; ok is false when the stats cannot tell (a Partition output).
type chaosCount func(st []pipeline.StageStats) (n uint64, ok bool)

func chaosOut(idx int) chaosCount {
	return func(st []pipeline.StageStats) (uint64, bool) { return st[idx].Out, true }
}

// chaosRun is one execution of a program.
type chaosRun struct {
	pr     *chaosProg
	p      *pipeline.Pipeline
	cancel context.CancelCauseFunc
	lim    *pipeline.Limiter
	limG   gauge

	events    atomic.Int64
	faulted   atomic.Bool // a fatal fault happened
	stopped   atomic.Bool
	cancelled atomic.Bool
	deadline  atomic.Bool // a Shutdown ran out of time
	fired     atomic.Bool // the action has fired (not a sync.Once: others must not wait for it)
	armed     atomic.Bool
	actions   sync.WaitGroup // actions fired from other goroutines

	shutdownErr error
	shutdownRan bool
	checks      []func(st []pipeline.StageStats) error
	inexact     bool        // a DropOnFull sheds items: the sink gets a subset
	lateFailed  atomic.Bool // the late stage was built after the end: later Waits report it

	sinkIdx  int        // the ForEach stage, or -1
	sinkStep *chaosStep // the ForEach sink's function
	seen     map[int64]int
	seenN    int
	observed bool // the sink lets us see the items
}

// tick counts a user-function call and fires the action when its turn comes.
func (r *chaosRun) tick() {
	if n := r.events.Add(1); r.pr.delay == 0 && int(n) >= r.pr.trigger && r.armed.Load() {
		r.fire()
	}
}

// arm lets the action fire once the pipeline is built: stages built after
// Shutdown's Wait would fail (as documented), which is not what a run tests.
// Stop and cancel may fire while stages are still being built.
func (r *chaosRun) arm() {
	r.armed.Store(true)
	if r.pr.delay == 0 && int(r.events.Load()) >= r.pr.trigger {
		r.fire()
	}
}

func (r *chaosRun) fire() {
	if !r.fired.CompareAndSwap(false, true) {
		return
	}
	// Shutdown from outside waits for the pipeline, so it must not run on
	// one of the pipeline's own goroutines; shutdown-inside runs on the
	// caller's goroutine on purpose.
	if r.pr.async || r.pr.action == chaosShutdown {
		r.actions.Add(1)
		go func() {
			defer r.actions.Done()
			r.act()
		}()
		return
	}
	r.act()
}

func (r *chaosRun) act() {
	switch r.pr.action {
	case chaosStop:
		r.stopped.Store(true)
		r.p.Stop()
	case chaosCancel:
		r.cancelled.Store(true)
		r.cancel(errCancel)
	case chaosStopThenCancel:
		r.stopped.Store(true)
		r.p.Stop()
		runtime.Gosched()
		r.cancelled.Store(true)
		r.cancel(errCancel)
	case chaosShutdown, chaosShutdownInside:
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
func (r *chaosRun) call(s *chaosStep, v int64) error {
	r.tick()
	s.gauge.enter()
	defer s.gauge.leave()
	if s.limited {
		r.limG.enter()
		defer r.limG.leave()
	}
	jitter(int(v))
	return r.inject(s.fault, &s.calls, &s.failedOnce, s.salt, v)
}

func (r *chaosRun) inject(f chaosFault, calls *atomic.Int64, failed *sync.Map, salt uint64, v int64) error {
	n := calls.Add(1) - 1
	switch f.kind {
	case chaosError:
		if int(n) == f.at {
			r.faulted.Store(true)
			return errInjected
		}
	case chaosPanic:
		if int(n) == f.at {
			r.faulted.Store(true)
			panic(chaosPanicValue)
		}
	case chaosGoexit:
		if int(n) == f.at {
			r.faulted.Store(true)
			runtime.Goexit()
		}
	case chaosSkip:
		if chaosSkipped(v, salt) {
			return errSkip
		}
	case chaosTransient:
		if _, again := failed.LoadOrStore(v, true); !again {
			return errSkip
		}
	}
	return nil
}

func chaosSkipped(v int64, salt uint64) bool { return hash(uint64(v), salt^0x5c)%4 == 0 }

func chaosMap(v int64, salt uint64) int64 { return v + int64(salt%1000) + 1 }

func chaosCopies(v int64, salt uint64) int { return int(hash(uint64(v), salt) % 3) }

func chaosKeep(v int64, salt uint64) bool { return hash(uint64(v), salt)%4 != 0 }

func chaosRouteOf(v int64, salt uint64) int {
	switch h := hash(uint64(v), salt); h % 16 {
	case 0:
		return math.MinInt
	case 1:
		return math.MaxInt
	default:
		return int(h)
	}
}

// opts are the options of a call stage for its fault and limiter.
func (r *chaosRun) opts(s *chaosStep) []pipeline.StageOption {
	var o []pipeline.StageOption
	switch s.fault.kind {
	case chaosSkip:
		o = append(o, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	case chaosTransient:
		o = append(o, pipeline.Retry(2, func(int) time.Duration { return 0 }))
	}
	if s.limited {
		o = append(o, pipeline.Limit(r.lim))
	}
	return o
}

func (r *chaosRun) next() int { return len(r.p.Stats()) }

func (r *chaosRun) expect(format string, cond func(st []pipeline.StageStats) bool, args ...func(st []pipeline.StageStats) any) {
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
func (r *chaosRun) expectIn(idx int, in chaosCount) {
	r.expect("stage %v took in %v items, its input carried %v", func(st []pipeline.StageStats) bool {
		n, ok := in(st)
		return !ok || st[idx].In == n
	}, func(st []pipeline.StageStats) any { return st[idx].Name },
		func(st []pipeline.StageStats) any { return st[idx].In },
		func(st []pipeline.StageStats) any { n, _ := in(st); return n })
}

func (r *chaosRun) buildSource(s *chaosSource) <-chan int64 {
	items := make([]int64, s.n)
	for i := range items {
		items[i] = s.base + int64(i)
	}
	s.idx = r.next()
	switch s.kind {
	case chaosGenerate:
		return pipeline.Generate(r.p, items...)
	case chaosFromSeq:
		return pipeline.FromSeq(r.p, func(yield func(int64) bool) {
			for i, v := range items {
				r.tick()
				if s.fault.kind == chaosPanic && i == s.fault.at {
					r.faulted.Store(true)
					panic(chaosPanicValue)
				}
				if !yield(v) {
					return
				}
			}
		})
	case chaosFromChan:
		s.ch = make(chan int64, len(items))
		for _, v := range items {
			s.ch <- v
		}
		close(s.ch)
		return pipeline.FromChan(r.p, s.ch)
	default:
		return pipeline.Produce(r.p, func(_ context.Context, emit func(int64) error) error {
			s.emit = emit
			for i, v := range items {
				r.tick()
				if i == s.fault.at {
					switch s.fault.kind {
					case chaosError:
						r.faulted.Store(true)
						return errInjected
					case chaosPanic:
						r.faulted.Store(true)
						panic(chaosPanicValue)
					case chaosGoexit:
						r.faulted.Store(true)
						runtime.Goexit()
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
func (r *chaosRun) buildChain(chain []*chaosStep, in <-chan int64, inCount chaosCount) (<-chan int64, chaosCount, chaosCount) {
	var firstIn chaosCount
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

func (r *chaosRun) buildStep(s *chaosStep, in <-chan int64) (<-chan int64, chaosCount) {
	p := r.p
	switch s.kind {
	case chaosFanOut, chaosFanOutOrdered:
		fn := func(_ context.Context, v int64) (int64, error) {
			if err := r.call(s, v); err != nil {
				return 0, err
			}
			return chaosMap(v, s.salt), nil
		}
		if s.kind == chaosFanOut {
			return pipeline.FanOut(p, in, s.workers, fn, r.opts(s)...), chaosOut(s.idx)
		}
		return pipeline.FanOutOrdered(p, in, s.workers, fn, r.opts(s)...), chaosOut(s.idx)
	case chaosFlatMap:
		return pipeline.FlatMap(p, in, s.workers, func(_ context.Context, v int64, emit func(int64) error) error {
			if err := r.call(s, v); err != nil {
				return err
			}
			for j := range chaosCopies(v, s.salt) {
				if err := emit(v*4 + int64(j)); err != nil {
					return err
				}
			}
			return nil
		}, r.opts(s)...), chaosOut(s.idx)
	case chaosFilter:
		return pipeline.Filter(p, in, func(v int64) bool {
			r.tick()
			_ = r.inject(s.fault, &s.calls, nil, s.salt, v)
			return chaosKeep(v, s.salt)
		}), chaosOut(s.idx)
	case chaosBuffer:
		return pipeline.Buffer(p, in, s.size), chaosOut(s.idx)
	case chaosDropOnFull:
		r.inexact = true
		return pipeline.DropOnFull(p, in, s.size), chaosOut(s.idx)
	case chaosThrottle:
		return pipeline.Throttle(p, in, s.wait, s.size), chaosOut(s.idx)
	case chaosBatch:
		b := pipeline.Batch(p, in, s.size, s.wait)
		u := r.next()
		r.expectIn(u, chaosOut(s.idx))
		return pipeline.Unbatch(p, b), chaosOut(u)
	case chaosTee:
		outs := pipeline.Tee(p, in, len(s.branches))
		return r.buildBranches(s, outs, chaosOut(s.idx))
	default: // chaosPartition
		outs := pipeline.Partition(p, in, len(s.branches), func(v int64) int {
			r.tick()
			_ = r.inject(s.fault, &s.calls, nil, s.salt, v)
			return chaosRouteOf(v, s.salt)
		})
		return r.buildBranches(s, outs, nil)
	}
}

// buildBranches builds one chain per output of a Tee (each output carries
// the Tee's Out) or a Partition (outCount nil: the outputs share its Out) and
// merges them back.
func (r *chaosRun) buildBranches(s *chaosStep, outs []<-chan int64, outCount chaosCount) (<-chan int64, chaosCount) {
	unknown := chaosCount(func([]pipeline.StageStats) (uint64, bool) { return 0, false })
	ends := make([]<-chan int64, len(outs))
	var counts, firsts []chaosCount
	empty := 0
	for i, o := range outs {
		c := outCount
		if c == nil {
			c = unknown
		}
		var end, first chaosCount
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
	return pipeline.Merge(r.p, ends...), chaosOut(merge)
}

// chaosResult is what a run produced.
type chaosResult struct {
	err      error
	problems []string
	outcome  string // for the statistics of a chaos run
}

// outcome names how the run ended, for the statistics of a chaos run.
func (r *chaosRun) outcome(err error) string {
	var pe *pipeline.PanicError
	switch {
	case errors.Is(err, errInjected):
		return "failed:error"
	case errors.As(err, &pe):
		return "failed:panic"
	case errors.Is(err, pipeline.ErrGoexit):
		return "failed:goexit"
	case errors.Is(err, errCancel):
		return "failed:cancel"
	case errors.Is(err, context.DeadlineExceeded):
		return "failed:shutdown-deadline"
	case err != nil:
		return "failed:other"
	case r.pr.sink == chaosFirst || r.pr.sink == chaosAllBreak:
		return "ok:early-exit"
	case r.stopped.Load():
		return "ok:stopped"
	}
	return "ok"
}

// chaosExec builds and runs the program encoded by data and returns every
// broken promise it found. A run that does not finish within hangBound is
// reported with every goroutine's stack.
func chaosExec(data []byte) (problems []string, outcome string) {
	ignore := goleak.IgnoreCurrent()
	pr := chaosDecode(data)
	done := make(chan chaosResult, 1)
	r := &chaosRun{pr: pr}
	go func() { done <- r.run() }()
	var res chaosResult
	select {
	case res = <-done:
	case <-time.After(hangBound):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return []string{fmt.Sprintf("did not finish within %v: %s\n%s", hangBound, pr, buf)}, "hung"
	}
	if err := goleak.Find(ignore); err != nil {
		res.problems = append(res.problems, fmt.Sprintf("goroutines left behind: %v", err))
	}
	for i, p := range res.problems {
		res.problems[i] = fmt.Sprintf("%s\n  program: %s\n  bytes: %s\n  error: %v", p, pr, hex.EncodeToString(data), res.err)
	}
	return res.problems, res.outcome
}

func (r *chaosRun) run() chaosResult {
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

	r.armed.Store(pr.action != chaosShutdown && pr.action != chaosShutdownInside)
	var timer *time.Timer
	if pr.delay > 0 && pr.action != chaosNone {
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
	in, inCount := srcs[0], chaosOut(pr.sources[0].idx)
	if len(srcs) > 1 {
		m := r.next()
		r.expectIn(m, func(st []pipeline.StageStats) (uint64, bool) {
			var n uint64
			for _, s := range pr.sources {
				n += st[s.idx].Out
			}
			return n, true
		})
		in, inCount = pipeline.Merge(r.p, srcs...), chaosOut(m)
	}
	out, outCount, _ := r.buildChain(pr.chain, in, inCount)
	if pr.sink != chaosForEach { // ForEach builds its stage as it runs
		r.arm()
	}
	watched := r.watch()
	// A stage built while the sink and Wait return, on another goroutine:
	// it must run or fail, never neither. (Not with ForEach, whose stage is
	// built as the sink starts, nor with an early exit, which may cancel it.)
	late := make(chan []string, 1)
	if pr.trigger%4 == 0 && pr.sink != chaosForEach && pr.sink != chaosFirst && pr.sink != chaosAllBreak {
		go func() { late <- r.lateStage() }()
	} else {
		late <- nil
	}
	err := r.runSink(out)
	if timer != nil && timer.Stop() {
		r.actions.Done()
	}
	r.actions.Wait()
	problems := append(<-late, watched()...)
	problems = append(problems, r.verify(err, outCount)...)
	// An emit kept by a Produce function and called once the run has ended
	// is refused, and changes nothing.
	for _, s := range pr.sources {
		if s.emit == nil {
			continue
		}
		if e := s.emit(1); !errors.Is(e, pipeline.ErrInvalidArgument) {
			problems = append(problems, fmt.Sprintf("an emit after the Produce function returned gave %v", e))
		}
		if again := r.p.Wait(); again != err && !r.lateFailed.Load() {
			problems = append(problems, fmt.Sprintf("a late emit changed Wait from %v to %v", err, again))
		}
	}
	return chaosResult{err: err, problems: problems, outcome: r.outcome(err)}
}

// watch calls Stats and Diagram over and over while the run goes on, and
// checks every snapshot; the returned function stops it and gives the
// problems found.
func (r *chaosRun) watch() func() []string {
	stop := make(chan struct{})
	found := make(chan []string, 1)
	go func() {
		var problems []string
		for {
			select {
			case <-stop:
				found <- problems
				return
			default:
			}
			_ = r.p.Diagram()
			for _, s := range r.p.Stats() {
				if s.Busy > s.Workers {
					problems = append(problems, fmt.Sprintf("a snapshot of %s showed Busy %d with %d workers", s.Name, s.Busy, s.Workers))
				}
				if s.Kind != "flatmap" && s.Out+s.Dropped+s.Errors > s.In {
					problems = append(problems, fmt.Sprintf("a snapshot of %s showed Out %d + Dropped %d + Errors %d above In %d", s.Name, s.Out, s.Dropped, s.Errors, s.In))
				}
			}
			if len(problems) > 0 {
				<-stop
				found <- problems
				return
			}
			runtime.Gosched()
		}
	}()
	return func() []string {
		close(stop)
		return <-found
	}
}

// lateStage builds a source and its sink while the run's sink and Wait may
// be returning: the source either delivers its item or fails as built too
// late, or the run was stopped or failed.
func (r *chaosRun) lateStage() []string {
	got, err := pipeline.Collect(r.p, pipeline.Generate(r.p, int64(-1)))
	if errors.Is(err, pipeline.ErrInvalidArgument) {
		r.lateFailed.Store(true)
	}
	if len(got) != 1 && err == nil && !r.stopped.Load() {
		return []string{"a stage built while Wait returned neither ran nor failed"}
	}
	return nil
}

func (r *chaosRun) runSink(out <-chan int64) error {
	p, pr := r.p, r.pr
	r.seen = map[int64]int{}
	see := func(v int64) {
		r.seen[v]++
		r.seenN++
	}
	switch pr.sink {
	case chaosCollect:
		got, err := pipeline.Collect(p, out)
		for _, v := range got {
			see(v)
		}
		r.observed = true
		return err
	case chaosAll:
		for v := range pipeline.All(p, out) {
			r.tick()
			see(v)
		}
		r.observed = true
		return p.Wait()
	case chaosForEach:
		var mu sync.Mutex
		s := &chaosStep{workers: pr.sinkWorkers, fault: pr.sinkFault, salt: pr.sinkSalt}
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
	case chaosReduce:
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
	case chaosFirst:
		_, _, err := pipeline.First(p, out)
		return err
	case chaosAllBreak:
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
func (r *chaosRun) verify(err error, outCount chaosCount) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	st := r.p.Stats()

	// Concurrency bounds hold whatever happened.
	chaosWalk(r.pr.chain, func(s *chaosStep) {
		if peak := s.gauge.peak.Load(); peak > int64(s.workers) {
			bad("%s ran %d calls at once with %d workers", chaosKindNames[s.kind], peak, s.workers)
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
	early := r.pr.sink == chaosFirst || r.pr.sink == chaosAllBreak
	var pe *pipeline.PanicError
	switch {
	case err == nil && faulted && !early:
		bad("an injected failure happened but Wait returned nil")
	case err != nil:
		ok := faulted && (errors.Is(err, errInjected) || errors.As(err, &pe) && pe.Value == chaosPanicValue ||
			errors.Is(err, pipeline.ErrGoexit))
		ok = ok || cancelled && errors.Is(err, errCancel)
		ok = ok || deadline && errors.Is(err, context.DeadlineExceeded)
		// A stage built racing the end may fail, and the Wait ending then reports it.
		ok = ok || r.lateFailed.Load() && errors.Is(err, pipeline.ErrInvalidArgument)
		if !ok {
			bad("unexpected error %v (faulted=%v cancelled=%v shutdown deadline=%v)", err, faulted, cancelled, deadline)
		}
		var se *pipeline.StageError
		if faulted && errors.Is(err, errInjected) && !errors.As(err, &se) {
			bad("an injected error arrived without its *StageError: %v", err)
		}
	}
	if again := r.p.Wait(); again != err && !(r.lateFailed.Load() && errors.Is(again, pipeline.ErrInvalidArgument)) {
		bad("Wait returned %v after the sink returned %v", again, err)
	}
	// Shutdown returns Wait's result, or ctx.Err() if its deadline came first.
	// From inside a stage's function it returns nil once the rest drained.
	inside := r.pr.action == chaosShutdownInside && r.shutdownErr == nil
	late := r.lateFailed.Load() && errors.Is(r.shutdownErr, pipeline.ErrInvalidArgument)
	if r.shutdownRan && r.shutdownErr != err && !errors.Is(r.shutdownErr, context.DeadlineExceeded) && !inside && !late {
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
		if s.kind == chaosFromChan && out+uint64(len(s.ch)) != uint64(s.n) {
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
		if !r.inexact && !chaosEqualCounts(want, r.seen) {
			bad("the sink saw %d items, expected %d (no DropOnFull: exactly the emitted items, transformed)", r.seenN, chaosSize(want))
		}
	}
	return problems
}

// chaosWalk calls f on every step of chain and of its branches.
func chaosWalk(chain []*chaosStep, f func(*chaosStep)) {
	for _, s := range chain {
		f(s)
		for _, br := range s.branches {
			chaosWalk(br, f)
		}
	}
}

// simulate computes the multiset the sink must see from what the sources
// actually emitted, applying every stage's function.
func (r *chaosRun) simulate(st []pipeline.StageStats) map[int64]int {
	ms := map[int64]int{}
	for _, s := range r.pr.sources {
		if s.kind == chaosProduce {
			for _, v := range s.emitted {
				ms[v]++
			}
			continue
		}
		for i := range int(st[s.idx].Out) { // these sources emit a prefix, in order
			ms[s.base+int64(i)]++
		}
	}
	ms = chaosSimChain(r.pr.chain, ms)
	if r.pr.sink == chaosForEach && r.pr.sinkFault.kind == chaosSkip {
		for v := range ms {
			if chaosSkipped(v, r.pr.sinkSalt) {
				delete(ms, v)
			}
		}
	}
	return ms
}

func chaosSimChain(chain []*chaosStep, ms map[int64]int) map[int64]int {
	for _, s := range chain {
		next := map[int64]int{}
		switch s.kind {
		case chaosFanOut, chaosFanOutOrdered:
			for v, n := range ms {
				if s.fault.kind != chaosSkip || !chaosSkipped(v, s.salt) {
					next[chaosMap(v, s.salt)] += n
				}
			}
		case chaosFlatMap:
			for v, n := range ms {
				if s.fault.kind == chaosSkip && chaosSkipped(v, s.salt) {
					continue
				}
				for j := range chaosCopies(v, s.salt) {
					next[v*4+int64(j)] += n
				}
			}
		case chaosFilter:
			for v, n := range ms {
				if chaosKeep(v, s.salt) {
					next[v] += n
				}
			}
		case chaosTee:
			for _, br := range s.branches {
				for v, n := range chaosSimChain(br, chaosCopyCounts(ms)) {
					next[v] += n
				}
			}
		case chaosPartition:
			parts := make([]map[int64]int, len(s.branches))
			for i := range parts {
				parts[i] = map[int64]int{}
			}
			for v, n := range ms {
				parts[wrap(chaosRouteOf(v, s.salt), len(parts))][v] += n
			}
			for i, br := range s.branches {
				for v, n := range chaosSimChain(br, parts[i]) {
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

func chaosCopyCounts(m map[int64]int) map[int64]int {
	c := make(map[int64]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func chaosEqualCounts(a, b map[int64]int) bool {
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

func chaosSize(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// chaosSoakRuns is PIPELINE_SOAK, or runs when unset.
func chaosSoakRuns(t *testing.T, runs int) int {
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
	runs := chaosSoakRuns(t, chaosRuns)
	r := newRand(t)
	start := time.Now()
	failures := 0
	kinds := map[string]int{}
	for i := range runs {
		data := make([]byte, 48+r.IntN(160))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		problems, outcome := chaosExec(data)
		kinds[outcome]++
		if len(problems) > 0 {
			failures++
			t.Errorf("run %d: %s", i, strings.Join(problems, "\n"))
			if failures >= 5 {
				t.Fatalf("stopping after %d failed runs of %d", failures, i+1)
			}
		}
		pr := chaosDecode(data)
		kinds[chaosActionNames[pr.action]]++
		chaosWalk(pr.chain, func(s *chaosStep) { kinds[chaosKindNames[s.kind]]++ })
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
