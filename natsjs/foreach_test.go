package natsjs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forEachRun runs Source → ForEach(fn, opts) on c until the consumer has
// settled n messages, then stops it, and returns its stage names and result.
func forEachRun(t *testing.T, c *natsjs.Consumer, n uint64, fn func(context.Context, job) error, opts ...pipeline.StageOption) ([]string, error) {
	t.Helper()
	p := pipeline.New(context.Background())
	res := make(chan error, 1)
	go func() { res <- natsjs.ForEach(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 3, fn, opts...) }()
	require.Eventually(t, func() bool { st := c.Stats(); return st.Acked+st.Dead == n }, 30*time.Second, time.Millisecond,
		"not settled: %v", c.Stats())
	p.Stop()
	err := <-res
	var names []string
	for _, st := range p.Stats() {
		names = append(names, st.Name)
	}
	return names, err
}

func TestForEach_IsOneStageThatAcksWhatItHandled(t *testing.T) {
	const n = 300
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)
	seen := newTally()

	stages, err := forEachRun(t, c, n, func(_ context.Context, j job) error { seen.add(j.ID); return nil })
	require.NoError(t, err)
	assert.Equal(t, []string{"natsjs.source", "natsjs.foreach"}, stages)
	assert.Equal(t, n, seen.distinct())
	assert.Equal(t, n, seen.total())
	st := c.Stats()
	assert.Equal(t, uint64(n), st.Acked)
	assert.Zero(t, st.InFlight)
	e.requireAllSettled("work")
}

func TestForEach_DeadLettersAnItemThatKeepsFailing(t *testing.T) {
	const n = 50
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(2),
		natsjs.Backoff(func(int) time.Duration { return time.Millisecond }))
	tries := newTally()

	_, err := forEachRun(t, c, n, func(_ context.Context, j job) error {
		tries.add(j.ID)
		if j.ID == 7 {
			return errors.New("always fails")
		}
		return nil
	}, pipeline.Name("work"))
	require.NoError(t, err)
	st := c.Stats()
	assert.Equal(t, uint64(n-1), st.Acked)
	assert.Equal(t, uint64(1), st.Retried, "one retry, then the dead letters")
	assert.Equal(t, uint64(1), st.Dead)
	assert.Equal(t, 2, tries.count(7))
	e.requireAllSettled("work")
}

func TestForEach_TakesABufferSizeAsMapThenAck(t *testing.T) {
	const n = 100
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)

	stages, err := forEachRun(t, c, n, func(context.Context, job) error { return nil }, pipeline.BufferSize(8))
	require.NoError(t, err)
	assert.Equal(t, []string{"natsjs.source", "natsjs.foreach", "natsjs.ack"}, stages)
	assert.Equal(t, uint64(n), c.Stats().Acked)
	e.requireAllSettled("work")
}
