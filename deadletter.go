package pipeline

// This file holds dead letters: DeadLetters, the typed output that stages
// given its Option send the items they gave up on, and DeadLetter, one such
// item with its error, its stage and the attempts made.

import (
	"fmt"
	"sync"
)

// DeadLetter is one item a stage gave up on: the item, the error of its last
// attempt (as [StageError].Err holds it: errors.Is and errors.As reach what
// the function returned), the stage's name, and the attempts made (1 without
// [Retry]; fewer than Retry's if the error was [Permanent], [RetryIf]
// rejected it, or the [RetryBudget] ran out).
type DeadLetter[T any] struct {
	Item     T
	Err      error
	Stage    string
	Attempts int
}

// DeadLetters is an output for the items stages gave up on, typed by their
// input type T: give each such stage (FanOut, FanOutOrdered, FlatMap,
// FanOutKeyed, ForEach; their input type must be T) the handle's [DeadLetters.Option],
// and read [DeadLetters.Out]. A failed item of such a stage (after its
// retries, and after [OnError] if the stage has it and returned nil) goes to
// Out instead of failing the pipeline; it is counted in [StageStats].Errors
// and DeadLetters, and a [Discarder] item is not told (whoever reads Out now
// holds it). A handler returning an error, or a panic, still fails the
// pipeline.
//
// Lifecycle: Out is closed once every stage feeding it has ended and the
// pipeline is built, which the pipeline takes to be when its first sink
// starts or Wait (or Shutdown) is first called: build every stage that feeds
// it before then (a stage given the Option later fails with
// [ErrInvalidArgument]). [Pipeline.Stop] loses nothing: the stages drain, and
// every dead letter is delivered. Out is the pipeline's own channel: a stage
// of the pipeline may read it (for a retry queue, or to log), and it appears
// in [Pipeline.Stats] as a stage of kind "deadletters" (Out counts the
// letters sent; Unread says nobody reads it yet).
//
// When Out is full, a stage with a failure to send waits (backpressure, as
// for any output) until a letter is read or the pipeline is cancelled; on
// cancel the letter is lost with the stage and the pipeline ends promptly
// even if nobody ever reads Out. So read Out concurrently with the sink (on
// its own goroutine, or as a stage of the pipeline), or give it a buffer big
// enough for every failure.
type DeadLetters[T any] struct {
	p       *Pipeline
	ch      chan DeadLetter[T]
	s       stage
	ref     channelRef
	mu      sync.Mutex
	feeders int // stages feeding it, plus one until the pipeline is sealed
	closed  bool
	bad     string
}

// NewDeadLetters returns a dead-letter output of p with a buffer of buffer
// letters. A nil p, a negative buffer, or a pipeline that has ended is an
// invalid argument: p fails with [ErrInvalidArgument] (if not nil), Out is
// closed, and every stage given the Option fails too.
func NewDeadLetters[T any](p *Pipeline, buffer int) *DeadLetters[T] {
	d := &DeadLetters[T]{p: p}
	switch {
	case p == nil:
		d.bad = "nil *Pipeline"
	case buffer < 0:
		d.bad = fmt.Sprintf("buffer = %d, must be >= 0", buffer)
	}
	if d.bad != "" {
		d.ch = make(chan DeadLetter[T])
		d.closed = true
		close(d.ch)
		if p != nil {
			p.fail(errArg("NewDeadLetters", d.bad))
		}
		return d
	}
	d.ch = make(chan DeadLetter[T], buffer)
	s := &d.s
	s.kind, s.source = "deadletters", true
	s.ctr = s.one[:]
	s.queue = d
	d.ref.maker = s
	s.outs = []*channelRef{&d.ref}
	p.mu.Lock()
	if p.ending {
		p.mu.Unlock()
		d.bad = "pipeline used after Wait returned"
		d.closed = true
		close(d.ch)
		p.fail(errArg("NewDeadLetters", d.bad))
		return d
	}
	s.index = len(p.stages) + 1
	s.name = fmt.Sprintf("deadletters#%d", s.index)
	p.chans.put((<-chan DeadLetter[T])(d.ch), &d.ref)
	p.stages = append(p.stages, s)
	p.mu.Unlock()
	d.feeders = 1
	p.onSeal(d.leave)
	return d
}

// Out returns the channel of dead letters, closed as the lifecycle above
// says.
func (d *DeadLetters[T]) Out() <-chan DeadLetter[T] { return d.ch }

// Option returns the stage option that sends the stage's failed items to d.
// A stage whose input type is not T, or of another pipeline, fails with
// [ErrInvalidArgument]; so does a stage given a nil d.
func (d *DeadLetters[T]) Option() StageOption {
	return func(c *stageConfig) {
		c.used |= optDeadLetters
		switch {
		case d == nil:
			c.invalid("DeadLetters.Option: nil *DeadLetters")
		case d.bad != "":
			c.invalid("DeadLetters.Option: %s", d.bad)
		default:
			c.dead = d
		}
	}
}

// accepts reports whether a stage of p whose input type is that of probe
// (a pointer to it) may feed d.
func (d *DeadLetters[T]) accepts(p, probe any) bool {
	_, ok := probe.(*T)
	return ok && p == any(d.p)
}

func (d *DeadLetters[T]) join() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.feeders++
	return true
}

func (d *DeadLetters[T]) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.feeders--
	if d.feeders == 0 && !d.closed {
		d.closed = true
		close(d.ch)
	}
}

// put sends one letter, under backpressure; false if the pipeline was
// cancelled first (the reason is recorded).
func (d *DeadLetters[T]) put(item any, err error, stage string, attempts int) bool {
	it, _ := item.(T) // a nil interface item is T's zero value
	if !send(d.p, d.ch, DeadLetter[T]{Item: it, Err: err, Stage: stage, Attempts: attempts}) {
		return false
	}
	d.s.ctr[0].out.Add(1)
	return true
}

// queue reports the length and capacity of the dead letters' channel.
func (d *DeadLetters[T]) queue() (int, int) { return len(d.ch), cap(d.ch) }
