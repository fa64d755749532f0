package natsjs_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConnect_ReportsAnUnreachableServerAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := fmt.Sprintf("nats://%s", l.Addr())
	require.NoError(t, l.Close()) // nothing listens there now

	start := time.Now()
	nc, js, err := natsjs.Connect(context.Background(), url)
	require.Error(t, err)
	assert.Nil(t, nc)
	assert.Nil(t, js)
	assert.ErrorIs(t, err, nats.ErrNoServers)
	assert.Contains(t, err.Error(), "natsjs: cannot reach NATS server at "+url)
	assert.Less(t, time.Since(start), 10*time.Second, "Connect must not wait for the server to appear")
}

func TestConnect_ReportsAServerWithoutJetStream(t *testing.T) {
	srv, err := startServer(t.TempDir(), -1, false)
	require.NoError(t, err)
	defer stopServer(srv)

	_, _, err = natsjs.Connect(context.Background(), srv.ClientURL())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no JetStream")
}

func TestNewConsumer_RejectsAConfigurationItCannotHonour(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		change     func(*jetstream.ConsumerConfig)
		deadLetter string
		opts       []natsjs.Option
		want       string
	}{
		{"ack policy none", func(c *jetstream.ConsumerConfig) { c.AckPolicy = jetstream.AckNonePolicy }, deadSubject, nil, "must have AckPolicy AckExplicit"},
		{"empty dead letter", nil, "", nil, "empty dead-letter subject"},
		{"dead letter read by the consumer", nil, jobsSubject, nil, "is read by consumer"},
		{"dead letter matched by a wildcard filter", func(c *jetstream.ConsumerConfig) { c.FilterSubject = "jobs.>" }, "jobs.todo.dead", nil, "is read by consumer"},
		{"more deliveries than the server allows", func(c *jetstream.ConsumerConfig) { c.MaxDeliver = 3 }, deadSubject, []natsjs.Option{natsjs.MaxDeliveries(4)}, "exceeds the consumer's MaxDeliver 3"},
		{"zero deliveries", nil, deadSubject, []natsjs.Option{natsjs.MaxDeliveries(0)}, "MaxDeliveries(0)"},
		{"zero prefetch", nil, deadSubject, []natsjs.Option{natsjs.Prefetch(0)}, "Prefetch(0)"},
		{"nil backoff", nil, deadSubject, []natsjs.Option{natsjs.Backoff(nil)}, "nil Backoff"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var change []func(*jetstream.ConsumerConfig)
			if tt.change != nil {
				change = append(change, tt.change)
			}
			cons := e.durable(fmt.Sprintf("c%d", i), time.Minute, change...)
			c, err := natsjs.NewConsumer(context.Background(), e.js, cons, tt.deadLetter, tt.opts...)
			assert.Nil(t, c)
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestNewConsumer_TakesMaxDeliveriesFromTheServerConsumer(t *testing.T) {
	e := newEnv(t)
	e.publishJobs(0, 1)
	cons := e.durable("work", time.Minute, func(c *jetstream.ConsumerConfig) { c.MaxDeliver = 2 })
	c, err := natsjs.NewConsumer(context.Background(), e.js, cons, deadSubject, quickRetry)
	require.NoError(t, err)

	calls := newTally()
	require.NoError(t, runUntil(t, c, func(_ context.Context, j job) (int, error) {
		calls.add(j.ID)
		return 0, fmt.Errorf("no")
	}, func(s natsjs.Stats) bool { return s.Dead == 1 }))
	assert.Equal(t, 2, calls.count(0))
}

func TestStages_ReportInvalidArguments(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("work", time.Minute)
	tests := []struct {
		name string
		run  func(p *pipeline.Pipeline) error
	}{
		{"Source nil consumer", func(p *pipeline.Pipeline) error {
			return natsjs.Ack(p, natsjs.Source(p, nil, natsjs.DecodeJSON[job]))
		}},
		{"Source nil decode", func(p *pipeline.Pipeline) error {
			return natsjs.Ack(p, natsjs.Source[job](p, c, nil))
		}},
		{"Map zero workers", func(p *pipeline.Pipeline) error {
			return natsjs.Ack(p, natsjs.Map(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 0, square))
		}},
		{"Map nil fn", func(p *pipeline.Pipeline) error {
			return natsjs.Ack(p, natsjs.Map[job, int](p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 1, nil))
		}},
		{"ForEach zero workers", func(p *pipeline.Pipeline) error {
			return natsjs.ForEach(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 0, func(context.Context, job) error { return nil })
		}},
		{"ForEach nil fn", func(p *pipeline.Pipeline) error {
			return natsjs.ForEach(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), 1, nil)
		}},
		{"Ack nil input", func(p *pipeline.Pipeline) error {
			return natsjs.Ack[job](p, nil)
		}},
		{"Publish zero in flight", func(p *pipeline.Pipeline) error {
			return natsjs.Publish(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), e.js, doneSubject, 0, natsjs.EncodeJSON[job])
		}},
		{"Publish empty subject", func(p *pipeline.Pipeline) error {
			return natsjs.Publish(p, natsjs.Source(p, c, natsjs.DecodeJSON[job]), e.js, "", 1, natsjs.EncodeJSON[job])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(pipeline.New(context.Background()))
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
		})
	}
	assert.Zero(t, c.Stats().InFlight)
}
