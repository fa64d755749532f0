package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// result is what the Publish tests send downstream.
type result struct {
	ID     int `json:"id"`
	Square int `json:"square"`
}

func square(_ context.Context, j job) (result, error) {
	return result{ID: j.ID, Square: j.ID * j.ID}, nil
}

// publishRun runs Source → Map(square) → Publish(subject) on c until the
// consumer has settled n messages, then stops it and returns its result.
func publishRun(t *testing.T, e *env, c *natsjs.Consumer, subject string, n uint64) error {
	return publishRunBounded(t, e.js, c, subject, n, 16)
}

// publishRunBounded is publishRun through js with at most maxInFlight
// publishes awaiting their ack.
func publishRunBounded(t *testing.T, js jetstream.JetStream, c *natsjs.Consumer, subject string, n uint64, maxInFlight int) error {
	t.Helper()
	p := pipeline.New(context.Background())
	out := natsjs.Map(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 4, square)
	res := make(chan error, 1)
	go func() { res <- natsjs.Publish(p, out, js, subject, maxInFlight, natsjs.EncodeJSON[result]) }()
	require.Eventually(t, func() bool { st := c.Stats(); return st.Acked+st.Dead == n }, 30*time.Second, time.Millisecond,
		"not settled: %v", c.Stats())
	p.Stop()
	return <-res
}

func TestPublish_AcksUpstreamOnceTheDownstreamStreamStoredTheResult(t *testing.T) {
	const n = 200
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)

	require.NoError(t, publishRun(t, e, c, doneSubject, n))

	done := e.streamMsgs("DONE")
	require.Len(t, done, n)
	got := make(map[int]int)
	for _, m := range done {
		var r result
		require.NoError(t, json.Unmarshal(m.Data, &r))
		got[r.ID] = r.Square
	}
	for id := range n {
		assert.Equal(t, id*id, got[id], "result of job %d", id)
	}
	st := c.Stats()
	assert.Equal(t, uint64(n), st.Published)
	assert.Equal(t, uint64(n), st.Acked)
	e.requireAllSettled("work")
}

func TestPublish_NeverAcksUpstreamWhenTheDownstreamPublishFails(t *testing.T) {
	const n = 4
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(2), quickRetry)

	// No stream stores "nowhere.results": the server never confirms.
	require.NoError(t, publishRun(t, e, c, "nowhere.results", n))

	st := c.Stats()
	assert.Zero(t, st.Acked)
	assert.Zero(t, st.Published)
	assert.Equal(t, uint64(n), st.Retried, "each failed publish is retried once")
	assert.Equal(t, uint64(n), st.Dead, "then dead-lettered")
	dead := e.streamMsgs("DEAD")
	require.Len(t, dead, n)
	assert.Contains(t, dead[0].Header.Get(natsjs.HeaderError), "natsjs: publish: ")
	e.requireAllSettled("work")
}

func TestPublish_StoresAResultOnceWhenItsMessageIsHandledTwice(t *testing.T) {
	const n = 50
	e := newEnv(t)
	e.publishJobs(0, n)

	// Two durable consumers over the same stream deliver every message twice,
	// as a redelivery after a crash would.
	require.NoError(t, publishRun(t, e, e.consumer("first", time.Minute), doneSubject, n))
	require.NoError(t, publishRun(t, e, e.consumer("second", time.Minute), doneSubject, n))

	assert.Len(t, e.streamMsgs("DONE"), n, "the Nats-Msg-Id dropped the duplicates")
}

func TestPublish_DeadLettersAValueThatCannotBeEncoded(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 3)
	c := e.consumer("work", time.Minute, natsjs.MaxDeliveries(5))

	p := pipeline.New(context.Background())
	jobs := natsjs.Source(p, c, natsjs.DecodeJSON[job])
	res := make(chan error, 1)
	go func() {
		res <- natsjs.Publish(p, jobs, e.js, doneSubject, 4, func(j job) ([]byte, error) {
			if j.ID == 1 {
				return nil, errors.New("unrepresentable")
			}
			return json.Marshal(j)
		})
	}()
	require.Eventually(t, func() bool { st := c.Stats(); return st.Acked+st.Dead == 3 }, 10*time.Second, time.Millisecond)
	p.Stop()
	require.NoError(t, <-res)

	st := c.Stats()
	assert.Equal(t, uint64(1), st.Dead)
	assert.Zero(t, st.Retried, "an encoding error is not retried")
	assert.Len(t, e.streamMsgs("DONE"), 2)
}

func TestCoreStages_AckTheMessagesTheySetAside(t *testing.T) {
	const n = 100
	tests := []struct {
		name  string
		build func(p *pipeline.Pipeline, in <-chan *natsjs.Msg[job]) <-chan *natsjs.Msg[job]
	}{
		{"Filter", func(p *pipeline.Pipeline, in <-chan *natsjs.Msg[job]) <-chan *natsjs.Msg[job] {
			return pipeline.Filter(p, in, func(m *natsjs.Msg[job]) bool { return m.Value.ID%2 == 0 })
		}},
		{"OnError skip", func(p *pipeline.Pipeline, in <-chan *natsjs.Msg[job]) <-chan *natsjs.Msg[job] {
			return pipeline.FanOut(p, in, 2, func(_ context.Context, m *natsjs.Msg[job]) (*natsjs.Msg[job], error) {
				if m.Value.ID%2 == 1 {
					return nil, errors.New("odd")
				}
				return m, nil
			}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.publishJobs(0, n)
			c := e.consumer("work", time.Minute)
			p := pipeline.New(context.Background())
			out := tt.build(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]))
			res := make(chan error, 1)
			go func() { res <- natsjs.Ack(p, out) }()
			require.Eventually(t, func() bool { return c.Stats().Acked == n }, 10*time.Second, time.Millisecond)
			p.Stop()
			require.NoError(t, <-res)

			st := c.Stats()
			assert.Equal(t, uint64(n/2), st.Discarded)
			assert.Zero(t, st.Retried+st.Dead)
			e.requireAllSettled("work")
		})
	}
}

func TestDropOnFull_AcksTheMessagesItSheds(t *testing.T) {
	const n = 200
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)
	gate := make(chan struct{})
	var handled atomic.Int64

	p := pipeline.New(context.Background())
	shed := pipeline.DropOnFull(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 1)
	res := make(chan error, 1)
	go func() {
		res <- natsjs.ForEach(p, shed, 1, func(context.Context, job) error {
			handled.Add(1)
			<-gate
			return nil
		})
	}()
	require.Eventually(t, func() bool { return c.Stats().Discarded > 0 }, 10*time.Second, time.Millisecond)
	close(gate)
	require.Eventually(t, func() bool { return c.Stats().Acked == n }, 10*time.Second, time.Millisecond)
	p.Stop()
	require.NoError(t, <-res)

	st := c.Stats()
	assert.Equal(t, uint64(n), uint64(handled.Load())+st.Discarded)
	e.requireAllSettled("work")
}

func TestAck_NaksWhatAStageLostAndReportsErrUnsettled(t *testing.T) {
	const n = 40
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)
	var seen atomic.Int64

	p := pipeline.New(context.Background())
	// A FlatMap that emits nothing for odd jobs loses their messages: a bug.
	kept := pipeline.FlatMap(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 1,
		func(_ context.Context, m *natsjs.Msg[job], emit func(*natsjs.Msg[job]) error) error {
			if seen.Add(1) == n {
				p.Stop()
			}
			if m.Value.ID%2 == 0 {
				return emit(m)
			}
			return nil
		})
	err := natsjs.Ack(p, kept)

	require.ErrorIs(t, err, natsjs.ErrUnsettled)
	st := c.Stats()
	assert.Equal(t, uint64(n/2), st.Acked)
	assert.Equal(t, uint64(n/2), st.Released, "the lost messages were handed back")
	assert.Zero(t, st.InFlight)
}

// slowAcks is a JetStream whose publish acknowledgements arrive 5ms late, and
// which records how many publishes were awaiting one at most.
type slowAcks struct {
	jetstream.JetStream
	c       *natsjs.Consumer
	calls   atomic.Int64
	maxWait atomic.Int64
	wg      sync.WaitGroup
}

type slowFuture struct {
	jetstream.PubAckFuture
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *slowFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *slowFuture) Err() <-chan error            { return f.err }

func (s *slowAcks) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	// Publishes awaiting their ack, this one included: a publish is confirmed
	// (Stats.Published) before its slot is freed.
	waiting := s.calls.Add(1) - int64(s.c.Stats().Published)
	for cur := s.maxWait.Load(); waiting > cur && !s.maxWait.CompareAndSwap(cur, waiting); cur = s.maxWait.Load() {
	}
	f, err := s.JetStream.PublishMsgAsync(m, opts...)
	if err != nil {
		return nil, err
	}
	slow := &slowFuture{PubAckFuture: f, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case a := <-f.Ok():
			time.Sleep(5 * time.Millisecond)
			slow.ok <- a
		case err := <-f.Err():
			slow.err <- err
		}
	}()
	return slow, nil
}

func TestPublish_HasAtMostMaxInFlightPublishesAwaitingTheirAck(t *testing.T) {
	const n, maxInFlight = 40, 3
	e := newEnv(t)
	e.publishJobs(0, n)
	c := e.consumer("work", time.Minute)
	js := &slowAcks{JetStream: e.js, c: c}

	require.NoError(t, publishRunBounded(t, js, c, doneSubject, n, maxInFlight))
	js.wg.Wait()

	assert.Equal(t, int64(maxInFlight), js.maxWait.Load(), "the bound is reached and never passed")
	assert.Equal(t, uint64(n), c.Stats().Published)
	assert.Len(t, e.streamMsgs("DONE"), n)
}
