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
// file-backed stream on an embedded server in three ways, one after the
// other in every iteration (in an order that rotates from one iteration to
// the next, so that a machine busy with something else slows all alike):
//
//   - plain: a nats.go loop, Messages(), Next(), Ack(), on one goroutine
//     (nats.go's defaults but for the heartbeat, natsjs.Source's 5s);
//   - pipeline: natsjs.Source → natsjs.Map with 4 workers → natsjs.Ack;
//   - foreach: natsjs.Source → natsjs.ForEach with 4 workers (one stage
//     that handles and acks).
//
// Each run reads the whole stream through a new durable consumer. The
// metrics are each way's messages per second over all iterations and, for
// the two pipelines, the ratio to the plain loop's (<way>-ratio); the median
// over the iterations of the same ratio within each iteration
// (<way>-median-ratio: one run slowed down by the machine, or by a pull
// request lost on the way, moves it less); and, where it can be read, the CPU
// time the process (the embedded server included) spent per message each
// way, which a busy machine disturbs less than the wall time.
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
	// piped runs Source → Map → Ack, or with oneStage Source → ForEach.
	piped := func(oneStage bool) time.Duration {
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
		handle := func() {
			if handled.Add(1) == benchMsgs {
				p.Stop()
			}
		}
		msgs := natsjs.Source(p, c, raw)
		if oneStage {
			err = natsjs.ForEach(p, msgs, 4, func(_ context.Context, _ []byte) error {
				handle()
				return nil
			})
		} else {
			err = natsjs.Ack(p, natsjs.Map(p, msgs, 4, func(_ context.Context, data []byte) ([]byte, error) {
				handle()
				return data, nil
			}))
		}
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if st := c.Stats(); st.Acked != benchMsgs {
			b.Fatalf("acked %d of %d: %v", st.Acked, benchMsgs, st)
		}
		return d
	}

	// The contenders, run in every iteration in an order that rotates.
	type way struct {
		name      string
		run       func() time.Duration
		wall, cpu time.Duration
		ratios    []float64 // plain/this way, of each iteration
	}
	ways := []*way{
		{name: "plain", run: plain},
		{name: "pipeline", run: func() time.Duration { return piped(false) }},
		{name: "foreach", run: func() time.Duration { return piped(true) }},
	}
	cpuOK := true
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := make([]time.Duration, len(ways))
		for k := range ways {
			j := (k + i) % len(ways)
			c0, ok0 := processCPU()
			d[j] = ways[j].run()
			c1, ok1 := processCPU()
			cpuOK = cpuOK && ok0 && ok1
			ways[j].wall += d[j]
			ways[j].cpu += c1 - c0
		}
		for j, w := range ways {
			w.ratios = append(w.ratios, d[0].Seconds()/d[j].Seconds())
		}
	}
	b.StopTimer()
	msgs := float64(benchMsgs * b.N)
	plainRate := msgs / ways[0].wall.Seconds()
	for _, w := range ways {
		rate := msgs / w.wall.Seconds()
		b.ReportMetric(rate, w.name+"-msgs/s")
		if cpuOK {
			b.ReportMetric(float64(w.cpu.Microseconds())/msgs, w.name+"-cpu-µs/msg")
		}
		if w != ways[0] {
			b.ReportMetric(rate/plainRate, w.name+"-ratio")
			b.ReportMetric(median(w.ratios), w.name+"-median-ratio")
		}
	}
	if plainStalls > 0 {
		b.Logf("the plain loop missed %d heartbeats (a pull request lost, 10s each)", plainStalls)
	}
}

// median returns the median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	mid := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[mid-1] + xs[mid]) / 2
	}
	return xs[mid]
}
