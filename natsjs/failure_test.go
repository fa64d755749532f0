package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quickRetry makes failed messages come back at once.
var quickRetry = natsjs.Backoff(func(int) time.Duration { return 10 * time.Millisecond })

// runUntil runs Source → Map(fn) → Ack on c until done reports true about
// c's stats, then stops the pipeline gracefully and returns its result.
func runUntil(t *testing.T, c *natsjs.Consumer, fn func(context.Context, job) (int, error), done func(natsjs.Stats) bool) error {
	t.Helper()
	p := pipeline.New(context.Background())
	out := natsjs.Map(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 2, fn)
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, out) }()
	require.Eventually(t, func() bool { return done(c.Stats()) }, 30*time.Second, time.Millisecond,
		"pipeline did not get there: %v", c.Stats())
	p.Stop()
	return <-res
}

func TestMap_NaksAFailedItemThenDeadLettersItAfterMaxDeliveries(t *testing.T) {
	const n, bad, tries = 20, 7, 3
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(tries), quickRetry)
	calls := newTally()

	err := runUntil(t, c, func(_ context.Context, j job) (int, error) {
		calls.add(j.ID)
		if j.ID == bad {
			return 0, fmt.Errorf("job %d: disk full", j.ID)
		}
		return j.ID, nil
	}, func(s natsjs.Stats) bool { return s.Acked+s.Dead == n })
	require.NoError(t, err, "a failed item does not fail the pipeline")

	assert.Equal(t, tries, calls.count(bad), "the bad job is tried once per delivery")
	st := c.Stats()
	assert.Equal(t, uint64(tries-1), st.Retried)
	assert.Equal(t, uint64(1), st.Dead)
	assert.Equal(t, uint64(n-1), st.Acked)
	assert.Zero(t, st.Poison)
	assert.Zero(t, st.InFlight)

	dead := e.streamMsgs("DEAD")
	require.Len(t, dead, 1)
	assert.JSONEq(t, `{"id":7}`, string(dead[0].Data))
	assert.Equal(t, "job 7: disk full", dead[0].Header.Get(natsjs.HeaderError))
	assert.Equal(t, "3", dead[0].Header.Get(natsjs.HeaderDeliveries))
	assert.Equal(t, jobsSubject, dead[0].Header.Get(natsjs.HeaderSubject))
	assert.Equal(t, "JOBS", dead[0].Header.Get(natsjs.HeaderStream))
	assert.Equal(t, "8", dead[0].Header.Get(natsjs.HeaderSequence))
	e.requireAllSettled("work")
}

func TestMap_RetriesAFailedItemUntilItSucceeds(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 1)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(5), quickRetry)
	calls := newTally()

	err := runUntil(t, c, func(_ context.Context, j job) (int, error) {
		calls.add(j.ID)
		if calls.count(j.ID) < 3 {
			return 0, errors.New("flaky")
		}
		return j.ID, nil
	}, func(s natsjs.Stats) bool { return s.Acked == 1 })
	require.NoError(t, err)

	assert.Equal(t, 3, calls.count(0))
	st := c.Stats()
	assert.Equal(t, uint64(2), st.Retried)
	assert.Equal(t, uint64(2), st.Redelivered)
	assert.Zero(t, st.Dead)
	assert.Empty(t, e.streamMsgs("DEAD"))
	e.requireAllSettled("work")
}

func TestMap_TreatsAPanicAsAFailureOfTheItem(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 3)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(2), quickRetry)

	err := runUntil(t, c, func(_ context.Context, j job) (int, error) {
		if j.ID == 1 {
			panic("boom")
		}
		return j.ID, nil
	}, func(s natsjs.Stats) bool { return s.Acked+s.Dead == 3 })
	require.NoError(t, err, "a panicking item must not stop the worker")

	dead := e.streamMsgs("DEAD")
	require.Len(t, dead, 1)
	assert.Equal(t, "panic: boom", dead[0].Header.Get(natsjs.HeaderError))
	assert.Equal(t, uint64(2), c.Stats().Acked)
	e.requireAllSettled("work")
}

func TestSource_SendsAPoisonMessageStraightToTheDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 2)
	_, err := e.js.Publish(context.Background(), jobsSubject, []byte("not json"))
	require.NoError(t, err)
	e.publishJobs(2, 2)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(5), quickRetry)
	seen := newTally()

	err = runUntil(t, c, func(_ context.Context, j job) (int, error) {
		seen.add(j.ID)
		return j.ID, nil
	}, func(s natsjs.Stats) bool { return s.Acked+s.Dead == 5 })
	require.NoError(t, err)

	assert.Equal(t, 4, seen.total(), "the poison message never reaches a stage")
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Poison)
	assert.Equal(t, uint64(1), st.Dead)
	assert.Zero(t, st.Retried, "a poison message is not retried")
	dead := e.streamMsgs("DEAD")
	require.Len(t, dead, 1)
	assert.Equal(t, "not json", string(dead[0].Data))
	assert.Contains(t, dead[0].Header.Get(natsjs.HeaderError), "natsjs: decode: ")
	assert.Equal(t, "1", dead[0].Header.Get(natsjs.HeaderDeliveries))
	e.requireAllSettled("work")
}

func TestMap_WithRetryOptionRetriesInProcessBeforeNaking(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 1)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(1))
	calls := newTally()

	p := pipeline.New(context.Background())
	out := natsjs.Map(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 1, func(_ context.Context, j job) (int, error) {
		calls.add(j.ID)
		return 0, errors.New("always")
	}, pipeline.Retry(3, func(int) time.Duration { return 0 }))
	res := make(chan error, 1)
	go func() { res <- natsjs.Ack(p, out) }()
	require.Eventually(t, func() bool { return c.Stats().Dead == 1 }, 10*time.Second, time.Millisecond)
	p.Stop()
	require.NoError(t, <-res)

	assert.Equal(t, 3, calls.count(0), "Retry's attempts run within one delivery")
	assert.Equal(t, uint64(1), c.Stats().Received)
}
