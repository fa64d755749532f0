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
	c := e.consumer("work", time.Minute, natsjs.Prefetch(64))
	seen := newTally()
	stopAt := make(chan struct{})
	var handled atomic.Int64

	p := pipeline.New(context.Background())
	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[job])
	done := natsjs.Map(p, jobs, 2, func(_ context.Context, j job) (int, error) {
		if handled.Add(1) == 100 {
			close(stopAt)
		}
		time.Sleep(100 * time.Microsecond)
		seen.add(j.ID)
		return j.ID, nil
	})
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, done) }()
	<-stopAt
	require.Positive(t, c.Stats().InFlight, "items were in flight at Stop")
	p.Stop()
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
