package natsjs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStop_AcksEveryItemInFlightAndHandsBackTheRest(t *testing.T) {
	const n = 1000
	e := newEnv(t)
	e.publishJobs(0, n)
	const prefetch, buf, workers = 64, 16, 2
	c := e.consumer("work", time.Minute, natsjs.Prefetch(prefetch))
	seen := newTally()
	gate := make(chan struct{}) // after 100 items the workers wait here
	var handled atomic.Int64

	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(buf))
	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[job])
	done := natsjs.Map(p, jobs, workers, func(_ context.Context, j job) (int, error) {
		if handled.Add(1) > 100 {
			<-gate
		}
		time.Sleep(100 * time.Microsecond)
		seen.add(j.ID)
		return j.ID, nil
	})
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, done) }()
	// Wait until the first 100 are acked and the pipeline is backed up: the
	// workers each hold an item, the Source's buffer is full and the Source
	// waits to emit one more, so that the client holds fetched messages the
	// pipeline has not taken.
	require.Eventually(t, func() bool {
		st := c.Stats()
		return st.Acked == 100 && st.InFlight >= workers+buf+1
	}, 10*time.Second, time.Millisecond, "the pipeline never backed up: %v", c.Stats())
	p.Stop()
	close(gate)
	require.NoError(t, <-res)

	st := c.Stats()
	assert.Zero(t, st.InFlight, "nothing left un-acked")
	assert.Equal(t, uint64(seen.total()), st.Acked, "every item that entered the pipeline was handled and acked")
	assert.Equal(t, st.Received, st.Acked+st.Released)
	assert.Positive(t, st.Released, "the prefetched messages were handed back")
	assert.Less(t, seen.total(), n, "Stop ended the run early")
	require.Eventually(t, func() bool {
		info := e.info("work")
		return info.NumPending+uint64(info.NumAckPending) == uint64(n)-st.Acked
	}, 10*time.Second, 5*time.Millisecond, "the rest is still on the server, the handled ones acked")

	// The next run takes the rest at once (the handed-back messages do not
	// wait for the one-minute AckWait): nothing was lost.
	p2 := pipeline.New(context.Background())
	done2 := natsjs.Map(p2, natsjs.Source(p2, c, natsjs.DecodeJSON[job]), 2, func(_ context.Context, j job) (int, error) {
		if seen.add(j.ID) == n {
			p2.Stop()
		}
		return j.ID, nil
	})
	require.NoError(t, natsjs.Ack(p2, done2))
	assert.Equal(t, n, seen.distinct())
	assert.Equal(t, n, seen.total(), "no job handled twice")
	e.requireAllSettled("work")
}

func TestSource_SurvivesAServerRestartWithTheSameStore(t *testing.T) {
	const n = 1000
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", 2*time.Second, natsjs.Prefetch(32))
	seen := newTally()
	halfway := make(chan struct{})
	var handled atomic.Int64

	p := pipeline.New(context.Background())
	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[job])
	done := natsjs.Map(p, jobs, 2, func(_ context.Context, j job) (int, error) {
		if handled.Add(1) == n/3 {
			close(halfway)
		}
		time.Sleep(200 * time.Microsecond)
		seen.add(j.ID)
		return j.ID, nil
	})
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, done) }()

	<-halfway
	e.restart()
	require.Eventually(t, func() bool { return seen.distinct() == n }, 30*time.Second, 5*time.Millisecond,
		"jobs lost across the restart: %d of %d handled", seen.distinct(), n)
	e.requireAllSettled("work")
	p.Stop()
	require.NoError(t, <-res)
	assert.Zero(t, c.Stats().InFlight)
	assert.GreaterOrEqual(t, c.Stats().Acked, uint64(n))
}
