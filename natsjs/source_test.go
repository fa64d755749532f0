package natsjs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSource_HandlesEveryMessageExactlyOnceWhenNothingCrashes(t *testing.T) {
	const n = 500
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)
	seen := newTally()

	p := pipeline.New(context.Background())
	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[job])
	done := natsjs.Map(p, jobs, 4, func(_ context.Context, j job) (int, error) {
		if seen.add(j.ID) == n {
			p.Stop()
		}
		return j.ID, nil
	})
	require.NoError(t, natsjs.Ack(p, done))

	for id := range n {
		assert.Equal(t, 1, seen.count(id), "job %d", id)
	}
	assert.Equal(t, n, seen.total())
	st := c.Stats()
	assert.Equal(t, uint64(n), st.Received)
	assert.Equal(t, uint64(n), st.Acked)
	assert.Zero(t, st.Redelivered)
	assert.Zero(t, st.InFlight)
	e.requireAllSettled("work")
}

func TestSource_RedeliversACancelledWorkersMessagesToAnother(t *testing.T) {
	const n = 400
	e := newEnv(t)
	e.publishJobs(0, n)
	// Two workers share one durable consumer, as two processes would.
	a := e.consumer("shared", time.Second, natsjs.Prefetch(32))
	b := e.consumer("shared", time.Second, natsjs.Prefetch(32))
	seen := newTally()
	slow := func(_ context.Context, j job) (int, error) {
		time.Sleep(200 * time.Microsecond)
		seen.add(j.ID)
		return j.ID, nil
	}

	// Worker A dies (is cancelled, acking nothing more) after 40 items.
	ctxA, crash := context.WithCancelCause(context.Background())
	defer crash(nil)
	var handledA atomic.Int64
	pa := pipeline.New(ctxA)
	doneA := natsjs.Map(pa, natsjs.Source(pa, a, natsjs.DecodeJSON[job]), 2, func(ctx context.Context, j job) (int, error) {
		if handledA.Add(1) == 40 {
			crash(errors.New("worker A crashed"))
		}
		return slow(ctx, j)
	})
	errA := make(chan error, 1)
	go func() { errA <- natsjs.Ack(pa, doneA) }()

	pb := pipeline.New(context.Background())
	doneB := natsjs.Map(pb, natsjs.Source(pb, b, natsjs.DecodeJSON[job]), 2, slow)
	errB := make(chan error, 1)
	go func() { errB <- natsjs.Ack(pb, doneB) }()

	require.EqualError(t, <-errA, "worker A crashed")
	inFlightAtCrash := a.Stats().InFlight
	require.Positive(t, inFlightAtCrash, "worker A held no un-acked message when it died")
	e.requireAllSettled("shared")
	pb.Stop()
	require.NoError(t, <-errB)

	assert.Equal(t, n, seen.distinct(), "every job handled at least once")
	assert.GreaterOrEqual(t, b.Stats().Redelivered, uint64(1), "A's messages came back to B")
	assert.GreaterOrEqual(t, a.Stats().Acked+b.Stats().Acked, uint64(n), "every message acked (twice is allowed: at least once)")
	assert.Zero(t, b.Stats().InFlight)
}

func TestSource_HoldsNoMoreUnackedMessagesThanPrefetchPlusThePipeline(t *testing.T) {
	const n, prefetch, buf, workers = 300, 10, 4, 2
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("bounded", time.Minute, natsjs.Prefetch(prefetch))
	gate := make(chan struct{})
	var entered atomic.Int64

	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(buf))
	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[job])
	done := natsjs.Map(p, jobs, workers, func(ctx context.Context, j job) (int, error) {
		entered.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return j.ID, nil
	})
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, done) }()

	// The pipeline can hold: one item per worker, the source's output buffer,
	// and the one the source is trying to emit.
	capacity := workers + buf + 1
	require.Eventually(t, func() bool {
		return entered.Load() == workers && c.Stats().InFlight == int64(capacity)
	}, 10*time.Second, time.Millisecond, "pipeline never filled up")
	for range 10 {
		info := e.info("bounded")
		assert.LessOrEqual(t, info.NumAckPending, prefetch+capacity, "un-acked messages")
		assert.GreaterOrEqual(t, info.NumPending, uint64(n-prefetch-capacity), "messages left on the server")
		assert.Equal(t, int64(capacity), c.Stats().InFlight)
		time.Sleep(10 * time.Millisecond)
	}
	close(gate)
	p.Stop()
	require.NoError(t, <-res)
	st := c.Stats()
	assert.Equal(t, st.Received, st.Acked+st.Released)
	assert.Zero(t, st.InFlight)
}

func TestSource_FailsThePipelineWhenItsConsumerIsDeleted(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 10)
	c := e.consumer("doomed", time.Minute)

	p := pipeline.New(context.Background())
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, natsjs.Source(p, c, natsjs.DecodeJSON[job])) }()
	require.Eventually(t, func() bool { return c.Stats().Acked == 10 }, 10*time.Second, time.Millisecond)
	require.NoError(t, e.js.DeleteConsumer(context.Background(), "JOBS", "doomed"))

	select {
	case err := <-res:
		require.ErrorIs(t, err, jetstream.ErrConsumerDeleted)
		assert.Contains(t, err.Error(), "natsjs: source JOBS/doomed")
	case <-time.After(30 * time.Second):
		p.Stop()
		t.Fatalf("the pipeline went on without its consumer: %v", <-res)
	}
}

func TestSource_FailsThePipelineWhenItsConnectionIsClosed(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 10)
	e.durable("work", time.Minute)
	nc, js, err := natsjs.Connect(context.Background(), e.url())
	require.NoError(t, err)
	defer nc.Close()
	cons, err := js.Consumer(context.Background(), "JOBS", "work")
	require.NoError(t, err)
	c, err := natsjs.NewConsumer(context.Background(), js, cons, deadSubject)
	require.NoError(t, err)

	p := pipeline.New(context.Background())
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, natsjs.Source(p, c, natsjs.DecodeJSON[job])) }()
	require.Eventually(t, func() bool { return c.Stats().Acked == 10 }, 10*time.Second, time.Millisecond)
	nc.Close()

	select {
	case err := <-res:
		require.ErrorIs(t, err, jetstream.ErrConnectionClosed)
	case <-time.After(30 * time.Second):
		p.Stop()
		t.Fatalf("the pipeline went on without its connection: %v", <-res)
	}
}
