package pipeline

// This file holds Weighted, which makes one call hold several slots of a
// Limiter: the weighted-semaphore pattern.

import (
	"context"
	"fmt"
)

// Weighted wraps a stage function so that each call holds weight(item) slots
// of l while it runs: the weighted-semaphore pattern, for items that cost more
// than others (a big file, a large batch). It is type-checked against the
// stage's own function, and combines with any stage:
//
//	pipeline.FanOut(p, files, 8, pipeline.Weighted(mem, sizeInMB, parse))
//
// A weight below 1 counts as 1. An item whose weight exceeds l's limit (also
// one waiting when [Limiter.SetLimit] shrinks the limit below its weight)
// fails with an error wrapping [ErrInvalidArgument], since it could never
// run; [OnError] may skip it. On an adaptive limiter ([NewAdaptiveLimiter])
// the bound is its max instead, and an item heavier than the current limit
// runs alone, once no slot is held; its latency and failure teach the
// limiter as every call's do. Waiting for slots ends with the context's cause
// if the pipeline is cancelled. Weighted on a stage that also has [Limit] on
// the same limiter fails every call with [ErrInvalidArgument]: holding the
// Limit slot while waiting for the weight could deadlock. A nil l, weight or
// fn makes every call fail with [ErrInvalidArgument].
func Weighted[T, R any](l *Limiter, weight func(T) int, fn func(context.Context, T) (R, error)) func(context.Context, T) (R, error) {
	return func(ctx context.Context, v T) (R, error) {
		var zero R
		if l == nil || weight == nil || fn == nil {
			return zero, fmt.Errorf("%w: Weighted: limiter, weight and fn must be non-nil and the limiter's size >= 1", ErrInvalidArgument)
		}
		if held, _ := ctx.Value(heldKey{}).(*heldSlot); held != nil && held.l == l {
			return zero, fmt.Errorf("%w: Weighted: the stage also has Limit on the same limiter; a call holding its Limit slot while waiting for its weight could deadlock: use one or the other", ErrInvalidArgument)
		}
		n := max(weight(v), 1)
		t, err := l.acquire(ctx, n)
		if err != nil {
			return zero, err
		}
		returned := false
		defer func() {
			if !returned { // fn panicked
				l.release(n)
			}
		}()
		r, err := fn(ctx, v)
		returned = true
		l.releaseCall(ctx, n, t, err)
		return r, err
	}
}
