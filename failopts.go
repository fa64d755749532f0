package pipeline

// This file holds the stage options of failure handling that decide which
// failures are retried and which calls run at all: RetryIf, RetryBudget,
// StrictTimeout and Breaker. Dead letters (DeadLetters.Option) are in
// deadletter.go; the options they refine (Timeout, Retry, OnError) are in
// options.go.

// RetryIf makes [Retry] re-run a failed call only if retryable(err) is true:
// a call whose error it rejects fails at once, after one attempt. Errors
// marked [Permanent] are never retried, whatever retryable says. Without
// RetryIf every other error is retried. retryable is called on the worker
// goroutine, possibly concurrently; a nil retryable is an invalid argument.
func RetryIf(retryable func(err error) bool) StageOption {
	return func(c *stageConfig) {
		c.used |= optRetryIf
		if retryable == nil {
			c.invalid("RetryIf(nil): predicate must not be nil")
			return
		}
		c.retryIf = retryable
	}
}

// RetryBudget bounds the stage's retries to a fraction of its calls, so
// that during an outage retries do not multiply the load on what is failing:
// every call (first attempt) of the stage earns ratio of a retry, up to burst
// + 1 retries saved (what is older is forgotten), and every retry spends one; the stage starts with burst
// retries saved. So over any stretch of the stage's life, retries <= burst +
// ratio × calls. A retry the budget cannot pay for is not made: the item
// fails with the error of its last attempt (to [OnError], dead letters, or
// the pipeline's result), as after its last attempt. The budget is the
// stage's own (workers share it; other stages given the same option do not).
// ratio must be in [0, 1] and burst >= 0.
func RetryBudget(ratio float64, burst int) StageOption {
	return func(c *stageConfig) {
		c.used |= optRetryBudget
		if !(ratio >= 0 && ratio <= 1) || burst < 0 {
			c.invalid("RetryBudget(%v, %d): ratio must be in [0, 1] and burst >= 0", ratio, burst)
			return
		}
		c.budget = newRetryBudget(ratio, burst)
	}
}

// StrictTimeout makes the stage's [Timeout] strict: a call that returns
// after its deadline counts as timed out even if it returned nil, its result
// discarded, with an error wrapping context.DeadlineExceeded (retried under
// [Retry] like any other). It cannot stop a call that ignores its context
// any sooner: the worker still waits for it. A stage with StrictTimeout and
// no Timeout is an invalid argument.
func StrictTimeout() StageOption {
	return func(c *stageConfig) {
		c.used |= optStrict
		c.strict = true
	}
}

// Breaker makes every call of the stage (every attempt, under [Retry]) ask b
// first: while b is open the call fails fast with [ErrOpen] without running
// the stage's function, and the item fails like any other (to [OnError],
// dead letters, or the pipeline's result). Each call's outcome is counted by
// b. Stages may share one breaker. [StageStats] shows b's state (Breaker),
// how often it opened (BreakerOpened) and the stage's calls it refused
// (Rejected). A nil b is an invalid argument.
func Breaker(b *CircuitBreaker) StageOption {
	return func(c *stageConfig) {
		c.used |= optBreaker
		if b == nil {
			c.invalid("Breaker(nil): breaker must not be nil")
			return
		}
		c.breaker = b
	}
}

// retryable reports whether err, returned by an attempt, may be retried.
func (c *stageConfig) retryable(err error) bool {
	if IsPermanent(err) || err == ErrOpen {
		return false
	}
	return c.retryIf == nil || c.retryIf(err)
}

// handle calls the OnError handler, serialised within the stage; a panic in
// it releases the lock (and fails the pipeline, as any panic does).
func (c *stageConfig) handle(se *StageError) error {
	c.onErrorMu.Lock()
	defer c.onErrorMu.Unlock()
	return c.onError(se)
}
