package pipeline

// This file holds the options of one stage: the StageOption type, what each
// option sets, and the check of which options a kind of stage accepts. The
// options of a whole pipeline ([Option]) are in pipeline.go.

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// StageOption configures one stage. Not every option fits every stage: a stage
// given an option it cannot honour (a Timeout on a [Filter], whose function
// takes no context) fails with [ErrInvalidArgument] naming the option.
type StageOption func(*stageConfig)

// optBit names one option, for the set of options a kind of stage accepts.
type optBit uint16

const (
	optName optBit = 1 << iota
	optBuffer
	optTimeout
	optRetry
	optOnError
	optLimit
	optRetryIf
	optRetryBudget
	optStrict
	optBreaker
	optDeadLetters
	optPending
	optCheckpoint
)

// The option sets of the kinds of stage.
const (
	optsBasic = optName | optBuffer                                                   // every stage with an output
	optsCall  = optsBasic | optTimeout | optRetry | optOnError | optLimit | optsFail  // stages calling a user function with a context
	optsFail  = optRetryIf | optRetryBudget | optStrict | optBreaker | optDeadLetters // failure handling (failopts.go)
	optsSink  = optsCall &^ optBuffer                                                 // ForEach: no output to buffer
	// the keyed stages also accept MaxPending
	optsKeyedCall     = optsCall | optPending  // FanOutKeyed
	optsKeyedThrottle = optsBasic | optPending // ThrottleKeyed
)

var optNames = map[optBit]string{
	optName: "Name", optBuffer: "BufferSize", optTimeout: "Timeout",
	optRetry: "Retry", optOnError: "OnError", optLimit: "Limit",
	optRetryIf: "RetryIf", optRetryBudget: "RetryBudget", optStrict: "StrictTimeout",
	optBreaker: "Breaker", optDeadLetters: "DeadLetters.Option", optPending: "MaxPending",
	optCheckpoint: "Checkpoint.Option",
}

// stageConfig is what a stage's options set.
type stageConfig struct {
	used     optBit
	name     string
	buf      int // -1: the pipeline's default
	timeout  time.Duration
	attempts int
	backoff  func(attempt int) time.Duration
	onError  func(*StageError) error
	limiter  *Limiter
	pending  int    // MaxPending; 0: DefaultMaxPending
	bad      string // the first invalid option value, reported when the stage is built

	// failure handling (failopts.go)
	onErrorMu *sync.Mutex      // serialises onError within the stage
	retryIf   func(error) bool // nil: every error but a Permanent one is retried
	budget    *retryBudget     // nil: no budget
	strict    bool             // StrictTimeout
	breaker   *CircuitBreaker  // nil: none
	dead      deadLetterOut    // nil: no dead letters

	checkpoint any // the *Checkpoint of Checkpoint.Option (checkpoint.go); sources only
}

// deadLetterOut is where a stage with dead letters sends its failed items
// (a *DeadLetters[T], see deadletter.go).
type deadLetterOut interface {
	accepts(p, probe any) bool // p is the stage's *Pipeline, probe a *T of its input type T
	join() bool                // a stage starts feeding it; false once it is closed
	leave()                    // a stage feeding it has ended
	put(item any, err error, stage string, attempts int) bool
}

// configure applies opts to a new config. A stage given none shares
// noOptions, which nothing writes.
func configure(opts []StageOption) *stageConfig {
	if len(opts) == 0 {
		return &noOptions
	}
	cfg := &stageConfig{buf: -1}
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	return cfg
}

// noOptions is the config of every stage built with no options.
var noOptions = stageConfig{buf: -1}

// problem returns what is wrong with the options for a stage of the given
// kind that accepts allowed, or "" if nothing is.
func (c *stageConfig) problem(kind string, allowed optBit) string {
	if extra := c.used &^ allowed; extra != 0 {
		for b := optBit(1); b <= optCheckpoint; b <<= 1 {
			if extra&b != 0 {
				return fmt.Sprintf("option %s does not apply to a %s stage", optNames[b], kind)
			}
		}
	}
	if c.bad != "" {
		return c.bad
	}
	if c.limiter != nil && c.limiter.Limit() < 1 {
		return "Limit: " + c.limiter.problem()
	}
	if c.strict && c.timeout <= 0 {
		return "StrictTimeout needs a Timeout"
	}
	if c.breaker != nil && c.breaker.bad != "" {
		return c.breaker.bad
	}
	return ""
}

// invalid records the first bad option value.
func (c *stageConfig) invalid(format string, args ...any) {
	if c.bad == "" {
		c.bad = fmt.Sprintf(format, args...)
	}
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

// BufferSize sets the capacity of the stage's output channel: of each of the
// n outputs of [Tee] and [Partition], of the one output of every other stage.
// [Buffer] and [DropOnFull] are given their output's capacity as n: they
// accept BufferSize only if it says the same (so that one list of options can
// serve many stages), and fail with [ErrInvalidArgument] if it does not. The default is the pipeline's [DefaultBuffer], itself
// [DefaultBufferSize] (with the extra room it describes) unless set; a
// stage given BufferSize gets exactly n. Zero makes the output unbuffered. A sink
// ([ForEach]) has no output: BufferSize there is an invalid argument.
func BufferSize(n int) StageOption {
	return func(c *stageConfig) {
		c.used |= optBuffer
		if n < 0 {
			c.invalid("BufferSize(%d): size must be >= 0", n)
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
//
// By default the timeout is cooperative: a call that returns success after
// its deadline is accepted as a success. Add [StrictTimeout] to count it as
// timed out.
func Timeout(d time.Duration) StageOption {
	return func(c *stageConfig) {
		c.used |= optTimeout
		if d <= 0 {
			c.invalid("Timeout(%v): duration must be > 0", d)
			return
		}
		c.timeout = d
	}
}

// Retry calls the stage's function up to attempts times in all while it
// returns an error, waiting backoff(n) before attempt n+1 (n counts from 1).
// A nil backoff is [DefaultBackoff]. The wait ends early if the pipeline is
// cancelled, and no attempt starts after that. Panics are not retried. Each
// re-run is counted in [StageStats].Retries; the error of the last attempt goes
// to [OnError] or fails the pipeline. An error marked [Permanent], one that
// [RetryIf] rejects, [ErrOpen] from a [Breaker], and a retry beyond the
// stage's [RetryBudget] end the attempts at once.
func Retry(attempts int, backoff func(attempt int) time.Duration) StageOption {
	return func(c *stageConfig) {
		c.used |= optRetry
		if attempts < 1 {
			c.invalid("Retry(%d): attempts must be >= 1", attempts)
			return
		}
		c.attempts = attempts
		c.backoff = backoff
	}
}

// DefaultBackoff is the wait before attempt n+1 that [Retry] uses when given a
// nil backoff: exponential with full jitter, a random duration in
// [0, min(5s, 50ms·2^(n-1))).
func DefaultBackoff(attempt int) time.Duration {
	const base, ceiling = 50 * time.Millisecond, 5 * time.Second
	limit := ceiling
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 20 {
		limit = min(ceiling, base<<(attempt-1))
	}
	return rand.N(limit)
}

// OnError decides what a failed item does. The handler gets the
// [*StageError]; if it returns nil the item is skipped (counted in
// [StageStats].Errors; sent to the stage's [DeadLetters] if it has them) and
// the stage goes on; if it returns an error the pipeline fails with that
// error (under [CollectErrors], the error is collected instead). Without
// OnError any error fails the pipeline. Panics are never offered to the
// handler: they always fail it.
//
// The handler runs on the worker goroutine whose call failed, but calls of
// it are serialised within the stage (a mutex around it): a handler may
// update state of its own without a lock, as long as no other stage's
// handler shares that state. A slow handler holds up the stage's other
// failures, not its successes.
func OnError(handler func(err *StageError) error) StageOption {
	return func(c *stageConfig) {
		c.used |= optOnError
		if handler == nil {
			c.invalid("OnError(nil): handler must not be nil")
			return
		}
		c.onError = handler
		c.onErrorMu = new(sync.Mutex)
	}
}

// Limit makes every call of the stage's function also hold one slot of l for
// its duration, so that stages sharing l never run more than l's limit of calls
// together, whatever their own worker counts.
func Limit(l *Limiter) StageOption {
	return func(c *stageConfig) {
		c.used |= optLimit
		if l == nil {
			c.invalid("Limit(nil): limiter must not be nil")
			return
		}
		c.limiter = l
	}
}

// DefaultMaxPending is how many items may wait inside a keyed stage
// ([FanOutKeyed], [ThrottleKeyed]) unless [MaxPending] says otherwise.
const DefaultMaxPending = 1024

// MaxPending bounds how many items may wait inside a keyed stage
// ([FanOutKeyed], [ThrottleKeyed]) for their key to be free: once n wait,
// the stage takes nothing more from its input until one has left, so
// upstream blocks and nothing is dropped. The default is [DefaultMaxPending].
// Each waiting item costs its own size plus one to three words. n < 1 is an
// invalid argument, and other stages do not accept MaxPending.
func MaxPending(n int) StageOption {
	return func(c *stageConfig) {
		c.used |= optPending
		if n < 1 {
			c.invalid("MaxPending(%d): n must be >= 1", n)
			return
		}
		c.pending = n
	}
}

// maxPending is the stage's MaxPending, or the default.
func (c *stageConfig) maxPending() int {
	if c.pending > 0 {
		return c.pending
	}
	return DefaultMaxPending
}
