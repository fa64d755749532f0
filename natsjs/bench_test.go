package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats.go/jetstream"
)

// benchMsgs is how many messages each run consumes and acks.
const benchMsgs = 100_000

// BenchmarkConsumeAndAck consumes and acks benchMsgs messages of a
// file-backed stream on an embedded server in two ways, one after the other
// in every iteration (in alternating order, so that a machine busy with
// something else slows both alike):
//
//   - plain: a nats.go loop, Messages(), Next(), Ack(), on one goroutine
//     (nats.go's defaults but for the heartbeat, natsjs.Source's 5s);
//   - pipeline: natsjs.Source → natsjs.Map with 4 workers → natsjs.Ack.
//
// Each run reads the whole stream through a new durable consumer. The
// metrics are each way's messages per second over all iterations, and their
// ratio pipeline/plain; the median over the iterations of the same ratio
// within each iteration (median-ratio: one run slowed down by the machine,
// or by a pull request lost on the way, moves it less); and, where it can be
// read, the CPU time the process (the embedded server included) spent per
// message each way, which a busy machine disturbs less than the wall time.
func BenchmarkConsumeAndAck(b *testing.B) {
	e := newEnv(b)
	payload := []byte(`{"id":12345,"name":"a job of typical size for a work queue"}`)
	for i := 0; i < benchMsgs; i++ {
		if _, err := e.js.PublishAsync(jobsSubject, payload); err != nil {
			b.Fatal(err)
		}
		if i%2_000 == 1_999 {
			<-e.js.PublishAsyncComplete()
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("stream not filled in a minute")
	}
	var seq int
	fresh := func() string {
		seq++
		name := fmt.Sprintf("bench%d", seq)
		e.durable(name, time.Minute)
		return name
	}
	drop := func(name string) {
		if err := e.js.DeleteConsumer(context.Background(), "JOBS", name); err != nil {
			b.Fatal(err)
		}
	}
	plainStalls := 0
	plain := func() time.Duration {
		name := fresh()
		defer drop(name)
		cons, err := e.js.Consumer(context.Background(), "JOBS", name)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		// The same heartbeat as natsjs.Source's, so that a pull request lost
		// on the way costs both ways the same 10s.
		it, err := cons.Messages(jetstream.PullHeartbeat(5 * time.Second))
		if err != nil {
			b.Fatal(err)
		}
		defer it.Stop()
		for n := 0; n < benchMsgs; {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				plainStalls++ // the iterator has pulled again: go on
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Data()
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		return time.Since(start)
	}
	raw := func(data []byte) ([]byte, error) { return data, nil }
	piped := func() time.Duration {
		name := fresh()
		defer drop(name)
		cons, err := e.js.Consumer(context.Background(), "JOBS", name)
		if err != nil {
			b.Fatal(err)
		}
		c, err := natsjs.NewConsumer(context.Background(), e.js, cons, deadSubject)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var handled atomic.Int64
		p := pipeline.New(context.Background())
		out := natsjs.Map(p, natsjs.Source(p, c, raw), 4, func(_ context.Context, data []byte) ([]byte, error) {
			if handled.Add(1) == benchMsgs {
				p.Stop()
			}
			return data, nil
		})
		if err := natsjs.Ack(p, out); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if st := c.Stats(); st.Acked != benchMsgs {
			b.Fatalf("acked %d of %d: %v", st.Acked, benchMsgs, st)
		}
		return d
	}

	var tPlain, tPiped, cPlain, cPiped time.Duration
	var ratios []float64 // of each iteration
	cpuOK := true
	measure := func(run func() time.Duration, wall, cpu *time.Duration) time.Duration {
		c0, ok0 := processCPU()
		d := run()
		c1, ok1 := processCPU()
		cpuOK = cpuOK && ok0 && ok1
		*wall += d
		*cpu += c1 - c0
		return d
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var dPlain, dPiped time.Duration
		if i%2 == 0 {
			dPlain = measure(plain, &tPlain, &cPlain)
			dPiped = measure(piped, &tPiped, &cPiped)
		} else {
			dPiped = measure(piped, &tPiped, &cPiped)
			dPlain = measure(plain, &tPlain, &cPlain)
		}
		ratios = append(ratios, dPlain.Seconds()/dPiped.Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	mid := len(ratios) / 2
	median := ratios[mid]
	if len(ratios)%2 == 0 {
		median = (ratios[mid-1] + ratios[mid]) / 2
	}
	b.ReportMetric(median, "median-ratio")
	msgs := float64(benchMsgs * b.N)
	plainRate, pipedRate := msgs/tPlain.Seconds(), msgs/tPiped.Seconds()
	b.ReportMetric(plainRate, "plain-msgs/s")
	b.ReportMetric(pipedRate, "pipeline-msgs/s")
	b.ReportMetric(pipedRate/plainRate, "ratio")
	if plainStalls > 0 {
		b.Logf("the plain loop missed %d heartbeats (a pull request lost, 10s each)", plainStalls)
	}
	if cpuOK {
		b.ReportMetric(float64(cPlain.Microseconds())/msgs, "plain-cpu-µs/msg")
		b.ReportMetric(float64(cPiped.Microseconds())/msgs, "pipeline-cpu-µs/msg")
	}
}
