package pipeline

// This file holds what a pipeline reports: the exported errors and error
// types, the Discarder interface for items set aside on purpose, the limits
// that make an absurd size an error, and the constructors of argument errors.
// It is the bottom layer of the package: it uses no other file.

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
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

// ErrGoexit is the cause a [*StageError] carries when a user function called
// runtime.Goexit (directly, or through testing's t.FailNow from the wrong
// goroutine): its goroutine ended without returning, so its item cannot be
// accounted for, and the pipeline fails rather than lose it.
var ErrGoexit = errors.New("pipeline: runtime.Goexit called in a user function")

// ShutdownError is what [Pipeline.Shutdown] returns when its context ends
// before the pipeline has drained: the context's error, and the stages that
// were still running then, each as "name: what held it up" (its output full
// or read by no stage, waiting for a Limiter slot, in a user call, waiting
// for input). errors.Is(err, context.DeadlineExceeded) holds for a deadline.
type ShutdownError struct {
	Err     error    // the context's error
	Running []string // the stages still running when it ended
}

// Error reports the context's error and the stages still running.
func (e *ShutdownError) Error() string {
	if len(e.Running) == 0 {
		return fmt.Sprintf("pipeline: shutdown: %v", e.Err)
	}
	return fmt.Sprintf("pipeline: shutdown: %v; still running: %s", e.Err, strings.Join(e.Running, "; "))
}

// Unwrap returns Err.
func (e *ShutdownError) Unwrap() error { return e.Err }

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

// panicError wraps a recovered panic value with the current stack.
func panicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

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

// errArg is an invalid-argument error about what (a stage or a call).
func errArg(what, msg string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, what, msg)
}

// errNilPipeline is what every method and stage given a nil *Pipeline reports.
func errNilPipeline() error { return errArg("pipeline", "nil *Pipeline") }

// mustNotBeNil is the argument problem of a nil function or value named
// name if isNil, else "" (no problem).
func mustNotBeNil(isNil bool, name string) string {
	if isNil {
		return name + " must not be nil"
	}
	return ""
}
