package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrInvalidArgument is wrapped by every error that reports a bad argument to
// a stage or to [New]: a worker count below one, a nil function, a nil channel,
// a size below one, a non-positive interval, and sizes too large to allocate
// (more than 1<<20 workers or outputs, a channel buffer over 1 GiB). The message names the stage and
// the argument. A stage given a bad argument starts no goroutine, closes its
// output at once and fails the pipeline with that error; it never panics.
var ErrInvalidArgument = errors.New("pipeline: invalid argument")

// ErrStopped is what the emit function of a source returns after
// [Pipeline.Stop]. A source function that returns it (or an error wrapping it)
// has ended cleanly: it is not a failure.
var ErrStopped = errors.New("pipeline: stopped")

// ErrFiltered is the reason a [Discarder] item is given when [Filter] drops it.
var ErrFiltered = errors.New("pipeline: filtered out")

// ErrDropped is the reason a [Discarder] item is given when [DropOnFull] sheds it.
var ErrDropped = errors.New("pipeline: dropped on full queue")

// Discarder is implemented by items that must learn when a stage sets them
// aside on purpose rather than passing them on: an item that carries a
// message to acknowledge, a pooled buffer to return, a lease to release.
// Discard is called once, on the stage's goroutine, with [ErrFiltered] when
// [Filter] drops the item, [ErrDropped] when [DropOnFull] sheds it, and the
// [*StageError] when [OnError] skips it. It is not called for items lost to a
// cancellation: those were not set aside on purpose. Whether an item type is a
// Discarder is decided from the stage's type parameter when the stage is
// built (an interface type parameter never is).
type Discarder interface {
	Discard(reason error)
}

// discarder reports whether items of type T are Discarders.
func discarder[T any]() bool {
	var zero T
	_, ok := any(zero).(Discarder)
	return ok
}

// discard tells v why it was set aside, if it wants to know.
func discard(v any, reason error) {
	if d, ok := v.(Discarder); ok {
		d.Discard(reason)
	}
}

// Limits on sizes, so that an absurd argument is an error rather than a
// crash of the whole process (an allocation that large cannot be recovered).
const (
	// maxWorkers bounds a stage's workers and the outputs of Tee and Partition.
	maxWorkers = 1 << 20
	// maxBufferBytes bounds a channel buffer: capacity × size of an item.
	maxBufferBytes = 1 << 30
)

// errEarlyExit is the cancellation cause used when a sink ends early on purpose
// ([First], breaking out of a range over [All]). It is never returned by Wait.
var errEarlyExit = errors.New("pipeline: sink ended early")

// StageError is the failure of one item in one stage: the error a user
// function returned (or a [*PanicError] if it panicked), the stage's name and
// the item it was given (nil for sources). errors.Is and errors.As reach Err.
type StageError struct {
	Stage string // the stage's name, see [Name]
	Item  any    // the input item the function failed on; nil for a source
	Err   error  // what the function returned, or a *PanicError
}

// Error reports the stage and the cause.
func (e *StageError) Error() string {
	return fmt.Sprintf("pipeline: stage %s: %v", e.Stage, e.Err)
}

// Unwrap returns Err.
func (e *StageError) Unwrap() error { return e.Err }

// PanicError is a panic recovered from a user function, with the stack of the
// goroutine that panicked. It always arrives wrapped in a [*StageError] and
// always fails the pipeline (it is not offered to [OnError]).
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack, as debug.Stack returns it
}

// Error reports the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, so errors.Is reaches it.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Option configures a [Pipeline] in [New].
type Option func(*Pipeline)

// DefaultBufferSize is the capacity of every stage's output channel unless
// [DefaultBuffer] or [BufferSize] says otherwise. Buffered outputs let each
// stage run ahead of the next by a few items, which removes most goroutine
// switches; they do not change what is delivered.
const DefaultBufferSize = 64

// DefaultBuffer sets the capacity of the output channel of every stage of the
// pipeline that is not given its own [BufferSize]. Zero makes outputs
// unbuffered; a negative n fails the pipeline with [ErrInvalidArgument].
func DefaultBuffer(n int) Option {
	return func(p *Pipeline) {
		if n < 0 {
			p.fail(errArg("New", fmt.Sprintf("DefaultBuffer(%d): size must be >= 0", n)))
			return
		}
		p.buf = n
	}
}

// Pipeline is the handle every stage of one pipeline shares: a context that
// all stages obey, the slot for the first failure, and the record of every
// goroutine its stages started. Create it with [New], build stages on it,
// consume the last stage with a sink ([Collect], [ForEach], …) or call
// [Pipeline.Wait]. All methods are safe for concurrent use.
type Pipeline struct {
	ctx    context.Context
	done   <-chan struct{}
	cancel context.CancelCauseFunc

	stopped atomic.Bool
	stopCh  chan struct{}

	mu       sync.Mutex
	err      error                // first failure
	running  int                  // stage goroutines alive
	sinks    int                  // sinks running on their callers' goroutines
	idle     chan struct{}        // closed (and renewed) whenever either drops
	finished bool                 // Wait has returned: no new goroutine may start
	stages   []*stage             // creation order
	owners   map[any]*stage       // output channel → stage that made it
	onStop   []context.CancelFunc // source contexts to cancel on Stop
	buf      int
}

// New returns a pipeline whose stages all obey ctx: when ctx ends, every stage
// stops, closes its output and returns, and [Pipeline.Wait] reports
// context.Cause(ctx). A nil ctx fails the pipeline with [ErrInvalidArgument].
func New(ctx context.Context, opts ...Option) *Pipeline {
	p := &Pipeline{
		stopCh: make(chan struct{}),
		idle:   make(chan struct{}),
		owners: make(map[any]*stage),
		buf:    DefaultBufferSize,
	}
	if ctx == nil {
		ctx = context.Background()
		p.ctx, p.cancel = context.WithCancelCause(ctx)
		p.done = p.ctx.Done()
		p.fail(errArg("New", "nil context"))
	} else {
		p.ctx, p.cancel = context.WithCancelCause(ctx)
		p.done = p.ctx.Done()
	}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p
}

// Context returns the context every stage obeys. It is done when the parent
// context ends, at the first failure (with that failure as its cause), when a
// sink ends early on purpose, and once [Pipeline.Wait] has returned.
func (p *Pipeline) Context() context.Context {
	if p == nil {
		return context.Background()
	}
	return p.ctx
}

// Wait blocks until every goroutine of every stage has returned, and every
// sink running on another goroutine ([Collect], [Reduce], [First], [Drain],
// a range over [All]) has returned too, then returns
// nil if nothing was lost: every source ran to its end or was stopped by
// [Pipeline.Stop], and every item was delivered, or deliberately dropped or
// skipped and counted in [Pipeline.Stats]. Otherwise it returns the first
// failure: a [*StageError], the parent context's cause, or an error wrapping
// [ErrInvalidArgument]. An early exit of a sink ([First], a broken range over
// [All]) is not a failure.
//
// Wait is safe to call from many goroutines and may be called again; each call
// returns the same result. Once Wait has returned, the pipeline's context is
// done and stages built afterwards fail with [ErrInvalidArgument].
// Wait does not read any stage's output: a pipeline whose last output nobody
// reads ends only when its context is cancelled. Never call Wait (or
// Shutdown without a deadline) from inside a sink's function or an All loop
// body: it would wait for itself. Call Stop there.
func (p *Pipeline) Wait() error {
	if p == nil {
		return errNilPipeline()
	}
	for {
		p.mu.Lock()
		if p.running == 0 && p.sinks == 0 {
			p.finished = true
			err := p.err
			p.mu.Unlock()
			p.cancel(context.Canceled)
			return err
		}
		idle := p.idle
		p.mu.Unlock()
		<-idle
	}
}

// quiet waits until no stage goroutine is left and, if withSinks, no sink
// either, or until done is closed; it reports which.
func (p *Pipeline) quiet(withSinks bool, done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		if p.running == 0 && (!withSinks || p.sinks == 0) {
			p.mu.Unlock()
			return true
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-done:
			return false
		}
	}
}

// Stop ends the pipeline gracefully: sources stop emitting (their emit returns
// [ErrStopped] and the context handed to a [Produce] function is cancelled) and
// close their outputs; every other stage goes on until its input closes, so
// every item already emitted reaches the sink and [Batch] flushes its partial
// batch. Stop does not block and may be called many times. Follow it with
// [Pipeline.Wait] or a sink, or use [Pipeline.Shutdown].
func (p *Pipeline) Stop() {
	if p == nil || p.stopped.Swap(true) {
		return
	}
	close(p.stopCh)
	p.mu.Lock()
	cancels := p.onStop
	p.onStop = nil
	p.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// Shutdown calls [Pipeline.Stop], then waits for the pipeline (its sink
// included) and returns its result as [Pipeline.Wait] does. If ctx ends
// first, it cancels the pipeline (with ctx's cause, which becomes the
// pipeline's failure if a stage was still running), waits for every stage
// goroutine to return, and returns ctx.Err().
func (p *Pipeline) Shutdown(ctx context.Context) error {
	if p == nil {
		return errNilPipeline()
	}
	if ctx == nil {
		return errArg("Shutdown", "nil context")
	}
	p.Stop()
	if p.quiet(true, ctx.Done()) {
		return p.Wait()
	}
	p.abort(context.Cause(ctx))
	p.quiet(false, nil)
	return ctx.Err()
}

// abort cancels the pipeline from outside with cause, and records the cause
// as the failure only if some stage is still running (otherwise nothing can
// be lost). It reports whether a stage was running.
func (p *Pipeline) abort(cause error) bool {
	p.mu.Lock()
	running := p.running > 0 && !p.finished
	if running && p.err == nil {
		p.err = cause
	}
	p.mu.Unlock()
	if running {
		p.cancel(cause)
	}
	return running
}

// fail records err as the pipeline's failure if it is the first one, and
// cancels the pipeline's context with it. It records err even after Wait has
// returned (a sink failing on its own goroutine, a stage built too late):
// such a failure must not be swallowed.
func (p *Pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	first := p.err
	p.mu.Unlock()
	p.cancel(first)
}

// exitEarly cancels the pipeline because a sink stopped reading on purpose.
func (p *Pipeline) exitEarly() { p.cancel(errEarlyExit) }

// noteCancel is called by a stage that gave up because the context is done:
// it records why, unless the reason is an early exit (not a failure).
func (p *Pipeline) noteCancel() {
	cause := context.Cause(p.ctx)
	if cause == errEarlyExit || cause == nil {
		return
	}
	p.mu.Lock()
	if p.err == nil && !p.finished {
		p.err = cause
	}
	p.mu.Unlock()
}

// halted reports whether the pipeline's context is done.
func (p *Pipeline) halted() bool { return p.ctx.Err() != nil }

// spawn starts fn on a new goroutine counted by Wait. It returns false, and
// starts nothing, once Wait has returned.
func (p *Pipeline) spawn(fn func()) bool {
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return false
	}
	p.running++
	p.mu.Unlock()
	go func() {
		defer p.exited()
		fn()
	}()
	return true
}

func (p *Pipeline) exited() {
	p.mu.Lock()
	p.running--
	p.wakeWaiters()
	p.mu.Unlock()
}

// wakeWaiters wakes every Wait and Shutdown to look again. p.mu is held.
func (p *Pipeline) wakeWaiters() {
	close(p.idle)
	p.idle = make(chan struct{})
}

// enterSink counts a sink running on its caller's goroutine, so that Wait and
// Shutdown elsewhere wait for it; leave (the function returned) ends it.
func (p *Pipeline) enterSink() (leave func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return func() {}
	}
	p.sinks++
	return func() {
		p.mu.Lock()
		p.sinks--
		p.wakeWaiters()
		p.mu.Unlock()
	}
}

// send delivers v on out, blocking under backpressure. It returns false, and
// records why, if the pipeline's context ends first.
func send[T any](p *Pipeline, out chan<- T, v T) bool {
	return deliver(p, out, v, nil) == nil
}

// deliver sends v on out unless the pipeline's context ends first (it then
// records why and returns the cause) or stop is closed first (ErrStopped; a
// nil stop never is).
//
// A non-blocking attempt comes first: on a buffered channel with room it
// costs no select. When out is full, the goroutine yields once before it
// parks. Parked on a full channel, a sender is woken as soon as one slot
// frees, sends one item and parks again: a context switch per item whenever
// its readers are slower. Yielding first lets the readers take several items,
// so the sender then fills several slots per wakeup. (Measured in bench/:
// on W3, 100 sleeping workers fed by one source, it lifts the efficiency
// from 0.94× to 0.96–0.97× of the sleep floor's.)
func deliver[T any](p *Pipeline, out chan<- T, v T, stop <-chan struct{}) error {
	select {
	case out <- v:
		return nil
	default:
	}
	runtime.Gosched()
	select {
	case out <- v:
		return nil
	case <-p.done:
		p.noteCancel()
		return context.Cause(p.ctx)
	case <-stop:
		return ErrStopped
	}
}

// panicError wraps a recovered panic value with the current stack.
func panicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// ---- stage options ----

// StageOption configures one stage. Not every option fits every stage: a stage
// given an option it cannot honour (a Timeout on a [Filter], whose function
// takes no context) fails with [ErrInvalidArgument] naming the option.
type StageOption func(*stageConfig)

type optBit uint8

const (
	optName optBit = 1 << iota
	optBuffer
	optTimeout
	optRetry
	optOnError
	optLimit
)

// Option sets per kind of stage.
const (
	optsBasic  = optName | optBuffer
	optsCall   = optsBasic | optTimeout | optRetry | optOnError | optLimit
	optsSource = optsBasic
)

var optNames = map[optBit]string{
	optName: "Name", optBuffer: "BufferSize", optTimeout: "Timeout",
	optRetry: "Retry", optOnError: "OnError", optLimit: "Limit",
}

type stageConfig struct {
	used     optBit
	name     string
	buf      int
	timeout  time.Duration
	attempts int
	backoff  func(attempt int) time.Duration
	onError  func(*StageError) error
	limiter  *Limiter
	bad      []string // invalid option values, reported when the stage is built
}

// Name sets the stage's name, shown in errors, [Pipeline.Stats] and
// [Pipeline.Diagram]. The default is the stage's kind and its 1-based position
// in creation order, e.g. "fanout#2". An empty name keeps the default.
func Name(name string) StageOption {
	return func(c *stageConfig) {
		c.used |= optName
		c.name = name
	}
}

// BufferSize sets the capacity of the stage's output channel (of each output,
// for [Tee] and [Partition]). The default is the pipeline's [DefaultBuffer],
// itself [DefaultBufferSize] unless set. Zero makes the output unbuffered.
func BufferSize(n int) StageOption {
	return func(c *stageConfig) {
		c.used |= optBuffer
		if n < 0 {
			c.bad = append(c.bad, fmt.Sprintf("BufferSize(%d): size must be >= 0", n))
			return
		}
		c.buf = n
	}
}

// Timeout gives every call of the stage's function a context with deadline d.
// A call that fails after its deadline returns an error that wraps
// context.DeadlineExceeded. The function must watch its context: a call that
// ignores it cannot be abandoned, since that would leak its goroutine.
// With [Retry], each attempt has its own deadline.
func Timeout(d time.Duration) StageOption {
	return func(c *stageConfig) {
		c.used |= optTimeout
		if d <= 0 {
			c.bad = append(c.bad, fmt.Sprintf("Timeout(%v): duration must be > 0", d))
			return
		}
		c.timeout = d
	}
}

// Retry calls the stage's function up to attempts times in all while it
// returns an error, waiting backoff(n) before attempt n+1 (n counts from 1).
// A nil backoff is exponential with full jitter: a random wait in
// [0, min(5s, 50ms·2^(n-1))). The wait ends early if the pipeline is
// cancelled, and no attempt starts after that. Panics are not retried. Each
// re-run is counted in [StageStats].Retries; the error of the last attempt goes
// to [OnError] or fails the pipeline.
func Retry(attempts int, backoff func(attempt int) time.Duration) StageOption {
	return func(c *stageConfig) {
		c.used |= optRetry
		if attempts < 1 {
			c.bad = append(c.bad, fmt.Sprintf("Retry(%d): attempts must be >= 1", attempts))
			return
		}
		c.attempts = attempts
		c.backoff = backoff
	}
}

// OnError decides what a failed item does. The handler gets the
// [*StageError]; if it returns nil the item is skipped (counted in
// [StageStats].Errors) and the stage goes on; if it returns an error the
// pipeline fails with that error. Without OnError any error fails the
// pipeline. Panics are never offered to the handler: they always fail it.
func OnError(handler func(err *StageError) error) StageOption {
	return func(c *stageConfig) {
		c.used |= optOnError
		if handler == nil {
			c.bad = append(c.bad, "OnError(nil): handler must not be nil")
			return
		}
		c.onError = handler
	}
}

// Limit makes every call of the stage's function also hold one slot of l for
// its duration, so that stages sharing l never run more than l's limit of calls
// together, whatever their own worker counts.
func Limit(l *Limiter) StageOption {
	return func(c *stageConfig) {
		c.used |= optLimit
		if l == nil {
			c.bad = append(c.bad, "Limit(nil): limiter must not be nil")
			return
		}
		c.limiter = l
	}
}

// ---- stage registry and stats ----

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
	// QueueLen and QueueCap describe the stage's output channel(s) now.
	QueueLen, QueueCap int
	// Limit is the current limit of the Limiter given with the [Limit]
	// option (an adaptive one moves it), 0 without one.
	Limit int
}

// counters are one worker's counts, written by that worker only (emit
// excepted) and padded to a cache line, so that workers never contend on
// them: an uncontended atomic add per count. Stats sums them. Busy is in -
// called while a goroutine of the stage is alive.
type counters struct {
	in, out, dropped, errors, retries, called atomic.Uint64
	_                                         [16]byte
}

type stage struct {
	name, kind string
	workers    int
	ctr        []counters
	queue      func() (n, c int)
	live       atomic.Int32 // goroutines of the stage still running
	inputs     []*stage     // upstream stages, for Diagram
	index      int
	source     bool // In is Out: a source takes nothing in
	calls      bool // its items are calls of a user function: Busy counts them

	limiter *Limiter // of the Limit option, for Stats; nil without
}

// Stats returns a snapshot of every stage's counters, in creation order. It is
// safe to call at any time, from any goroutine, also while the pipeline runs.
func (p *Pipeline) Stats() []StageStats {
	if p == nil {
		return nil
	}
	type view struct {
		s             *stage
		queue         func() (int, int)
		source, calls bool
	}
	p.mu.Lock()
	views := make([]view, len(p.stages))
	for i, s := range p.stages {
		views[i] = view{s, s.queue, s.source, s.calls}
	}
	p.mu.Unlock()
	out := make([]StageStats, len(views))
	for i, v := range views {
		s := v.s
		st := StageStats{Name: s.name, Kind: s.kind, Workers: s.workers}
		var called uint64
		for j := range s.ctr {
			c := &s.ctr[j]
			called += c.called.Load()
			st.In += c.in.Load()
			st.Out += c.out.Load()
			st.Dropped += c.dropped.Load()
			st.Errors += c.errors.Load()
			st.Retries += c.retries.Load()
		}
		if v.queue != nil {
			st.QueueLen, st.QueueCap = v.queue()
		}
		st.Limit = s.limiter.Limit()
		// A call cut short by a panic is never counted as returned; with no
		// goroutine of the stage left, nothing is running.
		if v.source {
			st.In = st.Out
		} else if busy := int(st.In) - int(called); v.calls && busy > 0 && s.live.Load() > 0 {
			st.Busy = busy
		}
		out[i] = st
	}
	return out
}

// newStage registers a stage of the given kind. Option values are checked
// against allowed; a problem fails the pipeline and is returned as an error
// wrapping ErrInvalidArgument that names the stage.
func (p *Pipeline) newStage(kind string, workers int, allowed optBit, opts []StageOption) (*stage, *stageConfig, error) {
	cfg := &stageConfig{buf: -1}
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	p.mu.Lock()
	s := &stage{kind: kind, workers: workers, index: len(p.stages) + 1, limiter: cfg.limiter}
	s.name = cfg.name
	if s.name == "" {
		s.name = fmt.Sprintf("%s#%d", kind, s.index)
	}
	if cfg.buf < 0 {
		cfg.buf = p.buf
	}
	s.ctr = make([]counters, min(max(workers, 1), maxWorkers))
	p.stages = append(p.stages, s)
	finished := p.finished
	p.mu.Unlock()

	switch {
	case finished:
		return s, cfg, p.invalid(s, "pipeline used after Wait returned")
	case cfg.used&^allowed != 0:
		extra := cfg.used &^ allowed
		for b := optBit(1); b <= optLimit; b <<= 1 {
			if extra&b != 0 {
				return s, cfg, p.invalid(s, "option %s does not apply to a %s stage", optNames[b], kind)
			}
		}
	case len(cfg.bad) > 0:
		return s, cfg, p.invalid(s, "%s", cfg.bad[0])
	case cfg.limiter != nil && cfg.limiter.Limit() < 1:
		return s, cfg, p.invalid(s, "Limit: %s", cfg.limiter.problem())
	}
	return s, cfg, nil
}

// describe changes what Stats and Diagram read of s, under the lock they take.
func (p *Pipeline) describe(s *stage, change func(*stage)) {
	p.mu.Lock()
	change(s)
	p.mu.Unlock()
}

// queueOf reports the summed length and capacity of outs.
func queueOf[T any](outs ...chan T) func() (int, int) {
	return func() (l, c int) {
		for _, o := range outs {
			l += len(o)
			c += cap(o)
		}
		return l, c
	}
}

// errArg is an invalid-argument error about what (a stage or a call).
func errArg(what, msg string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, what, msg)
}

// invalid fails the pipeline with an invalid-argument error for stage s.
func (p *Pipeline) invalid(s *stage, format string, args ...any) error {
	err := fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidArgument, s.name}, args...)...)
	p.fail(err)
	return err
}

// output makes stage s's output channel and records it, so later stages
// can recognise it as the pipeline's own.
//
// A buffer whose items would take more than maxBufferBytes is refused: if
// *err is nil it becomes the invalid-argument error, and the channel made is
// unbuffered (the caller then closes it without starting the stage).
func output[T any](p *Pipeline, s *stage, buf int, err *error) chan T {
	var zero T
	if size := uint64(unsafe.Sizeof(zero)); size > 0 && uint64(buf) > maxBufferBytes/size {
		if *err == nil {
			*err = p.invalid(s, "buffer of %d items would take more than %d MiB", buf, maxBufferBytes>>20)
		}
		buf = 0
	}
	ch := make(chan T, buf)
	p.mu.Lock()
	p.owners[(<-chan T)(ch)] = s
	p.mu.Unlock()
	return ch
}

// inlet is a stage's input. A channel made by this pipeline is read with
// plain receives: its producer closes it when the pipeline is cancelled, so
// a receive cannot outlive the pipeline. A channel made outside it (foreign)
// is read the way [FromChan] reads one, obeying cancellation and Stop, but
// directly, without FromChan's goroutine and the extra hop per item.
type inlet[T any] struct {
	ch      <-chan T
	foreign bool
}

// next returns the next item of the input; false once it has ended: closed,
// or, for a foreign channel, the pipeline cancelled (the reason recorded) or
// stopped. A stage whose input is foreign is the pipeline's source as far as
// Stop goes: once it sees Stop it takes nothing more from the channel (a
// receive already under way may still take one value, which is delivered),
// and what the channel still holds stays there.
func (in inlet[T]) next(p *Pipeline) (T, bool) {
	if in.foreign {
		return in.nextForeign(p)
	}
	v, ok := <-in.ch
	return v, ok
}

func (in inlet[T]) nextForeign(p *Pipeline) (v T, ok bool) {
	if p.stopped.Load() {
		return v, false
	}
	select {
	case v, ok = <-in.ch:
		return v, ok
	default:
	}
	select {
	case v, ok = <-in.ch:
		return v, ok
	case <-p.done:
		p.noteCancel()
		return v, false
	case <-p.stopCh:
		return v, false
	}
}

// input checks a stage's input channel and records, for Stats and Diagram,
// the stage that feeds it (none for a foreign channel). A nil channel is
// reported as false.
func input[T any](p *Pipeline, s *stage, in <-chan T) (inlet[T], bool) {
	if in == nil {
		return inlet[T]{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	up, ours := p.owners[in]
	if up != nil && s != nil {
		s.inputs = append(s.inputs, up)
	}
	return inlet[T]{ch: in, foreign: !ours}, true
}
