package pipeline

// This file holds what decides whether a failed call is worth another
// attempt: the Permanent marker, the retry budget a stage's calls share, and
// the error of a call that returned after its deadline under StrictTimeout.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// permanentError marks an error that no retry can cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry can cure (a 404, a malformed
// item): a stage with [Retry] gives up on the item at once, after the attempt
// that returned it. The result still fails the item as err would, and
// errors.Is and errors.As reach err through it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

// retryBudget bounds the retries of one stage to a fraction of its calls:
// every call deposits ratio tokens (up to burst + 1 saved), every retry takes
// one whole token. It starts with burst tokens, so over any stretch of a
// stage's life, retries <= burst + ratio × calls.
type retryBudget struct {
	mu     sync.Mutex
	ratio  float64
	burst  float64
	tokens float64
}

func newRetryBudget(ratio float64, burst int) *retryBudget {
	return &retryBudget{ratio: ratio, burst: float64(burst), tokens: float64(burst)}
}

// deposit records a call (its first attempt).
func (b *retryBudget) deposit() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.tokens = min(b.tokens+b.ratio, b.burst+1)
	b.mu.Unlock()
}

// take reports whether a retry may run now, and spends its token if so.
// A nil budget always allows.
func (b *retryBudget) take() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// lateError is the error of a call that returned nil after its deadline
// (d after it started) under StrictTimeout, or nil if ctx's deadline has not
// passed.
func lateError(ctx context.Context, d time.Duration) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return fmt.Errorf("pipeline: call returned after its deadline: %w (strict timeout %v)", context.DeadlineExceeded, d)
}

// tried carries the number of attempts a failed call made, from the call
// path to the settling of its failure; it never leaves the package.
type tried struct {
	err error
	n   int
}

func (e *tried) Error() string { return e.err.Error() }

// withAttempts wraps a failed call's err with its number of attempts n.
func withAttempts(err error, n int) error {
	if err == nil || n <= 1 {
		return err
	}
	return &tried{err: err, n: n}
}

// untried returns the attempts withAttempts recorded in err (1 if none)
// and the error it wrapped.
func untried(err error) (int, error) {
	if t, ok := err.(*tried); ok {
		return t.n, t.err
	}
	return 1, err
}

// errPanicked is the outcome a Breaker is told of a call that panicked.
var errPanicked = errors.New("pipeline: call panicked")
