package pipeline

// This file holds the Limit slot one call holds (heldSlot): taken before
// the call, given back after it (and told its outcome, for an adaptive
// limiter), and given back while a FlatMap's emit waits for room.

import (
	"context"
	"time"
)

// heldKey marks, in a call's context, the *heldSlot of the limiter whose slot
// the call holds through the Limit option.
type heldKey struct{}

// heldSlot is the one Limit slot a call holds. A FlatMap call gives it back
// while emit waits for room downstream (see yield) and takes it again after.
type heldSlot struct {
	l    *Limiter
	held bool
	t    ticket // what an adaptive limiter learns of the call when it ends
}

// hold takes one slot of l for a call of a stage with the Limit option.
func (l *Limiter) hold(ctx context.Context) (*heldSlot, error) {
	t, err := l.acquire(ctx, 1)
	if err != nil {
		return nil, err
	}
	return &heldSlot{l: l, held: true, t: t}, nil
}

// finish gives the slot back once the call has returned err, and lets an
// adaptive limiter learn from it; ctx is the call's context (a call ended by
// its cancellation teaches nothing). A nil h does nothing.
func (h *heldSlot) finish(ctx context.Context, err error) {
	if h == nil || !h.held {
		return
	}
	h.held = false
	h.l.releaseCall(ctx, 1, h.t, err)
}

// release gives the slot back if the call still holds it (it panicked):
// nothing is learnt from such a call.
func (h *heldSlot) release() {
	if h.held {
		h.held = false
		h.l.release(1)
	}
}

// yield gives the slot back while wait runs (a call blocked on its output is
// not using the resource the limiter guards, and a stage downstream that
// shares the limiter may need the slot to make room), then takes it again.
// It returns wait's result, or the context's cause if the slot cannot be had
// again.
func (h *heldSlot) yield(ctx context.Context, wait func() bool) error {
	if h == nil || !h.held {
		if !wait() {
			return context.Cause(ctx)
		}
		return nil
	}
	if h.t.seq != 0 {
		h.t.held += time.Since(h.t.at)
	}
	h.l.release(1)
	h.held = false
	if !wait() {
		return context.Cause(ctx)
	}
	t, err := h.l.acquire(ctx, 1)
	if err != nil {
		return err
	}
	h.t.at = t.at // the call keeps its first admission's number and in-flight count
	h.held = true
	return nil
}
