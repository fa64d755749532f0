package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/examples/internal/metricsrv"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/ec0f1147/pipeline/otel"
	"github.com/ec0f1147/pipeline/prom"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The shape of a worker pipeline, which bounds how many messages a worker
// holds un-acked (see unackedBound).
const (
	prefetch    = 32 // messages pulled ahead of the pipeline
	stageBuffer = 16 // the buffer of each stage's output
	publishes   = 16 // results awaiting the server's acknowledgement
)

// unackedBound is the most messages one worker process can hold that the
// server has not seen acked, and so the most a crash can make it handle
// twice: the prefetched batch, the pipeline's buffers and goroutines, the
// publishes awaiting their acknowledgement, a group of acks being gathered
// and one more on its way to the server (natsjs sends acks in groups of at
// most natsjs.AckGroupSize).
func unackedBound(cfg Config) int {
	return prefetch + // Source: pulled, not yet emitted
		stageBuffer + // Source → Map
		cfg.Workers + // Map's goroutines
		stageBuffer + // Map → Publish
		1 + // Publish's encoding goroutine
		stageBuffer + // Publish's encoding → its publishing
		1 + // Publish's publishing goroutine, waiting for a slot
		publishes + // published, awaiting the server's acknowledgement
		2*natsjs.AckGroupSize // acks gathered, and acks written but not yet read by the server
}

// connect reaches the server at url, with the natsjs defaults: reconnect
// forever once connected, fail at once if the server is not there.
func connect(ctx context.Context, url string) (*nats.Conn, jetstream.JetStream, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return natsjs.Connect(ctx, url, nats.Name("jsworker"))
}

// pipe is one running worker pipeline: Source → Map → Publish.
type pipe struct {
	p         *pipeline.Pipeline
	c         *natsjs.Consumer
	processed *atomic.Int64 // jobs done by this pipeline
	done      chan error    // the pipeline's result, once it has ended
}

// startPipe starts a worker pipeline on the durable consumer cons: it
// decodes jobs, runs w.process on them with cfg.Workers goroutines, and
// publishes each result to the results stream, acking the job only once the
// result is stored. Failed jobs are retried after a short backoff, then
// dead-lettered; poison ones are dead-lettered at once. done, if not nil, is
// called with the ID of every job processed; opts go to pipeline.New.
func startPipe(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, w *worker, cfg Config, done func(id int), opts ...pipeline.Option) (*pipe, error) {
	c, err := natsjs.NewConsumer(ctx, js, cons, deadSubject,
		natsjs.MaxDeliveries(cfg.MaxDeliveries),
		natsjs.Backoff(func(n int) time.Duration { return time.Duration(n) * 50 * time.Millisecond }),
		natsjs.Prefetch(prefetch))
	if err != nil {
		return nil, err
	}
	opts = append([]pipeline.Option{pipeline.DefaultBuffer(stageBuffer)}, opts...)
	pp := &pipe{p: pipeline.New(ctx, opts...), c: c,
		processed: new(atomic.Int64), done: make(chan error, 1)}
	jobs := natsjs.Source(pp.p, c, natsjs.DecodeJSON[Job])
	results := natsjs.Map(pp.p, jobs, cfg.Workers, func(ctx context.Context, j Job) (Result, error) {
		r, err := w.process(ctx, j)
		if err == nil {
			pp.processed.Add(1)
			if done != nil {
				done(j.ID)
			}
		}
		return r, err
	})
	go func() {
		pp.done <- natsjs.Publish(pp.p, results, js, resultsSubj, publishes, natsjs.EncodeJSON[Result])
	}()
	return pp, nil
}

// runWorkerRole is -role worker: one worker pipeline until Ctrl-C (or
// SIGTERM), then a graceful stop; a second signal is not waited for: the
// process ends and the server redelivers what it held.
//
// With events (the worker processes that -demo and -scale start), it also
// prints a line "done <id>" for every job it processes, written before the
// job's result is published (so a job processed by a process killed right
// after is counted), and a line "status ..." every 10ms; and it stops
// gracefully when stdin ends, so that it does not outlive the process that
// started it.
func runWorkerRole(ctx context.Context, url string, cfg Config, out io.Writer, events bool, stdin io.Reader) error {
	nc, js, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer nc.Close()
	cons, err := setup(ctx, js, cfg)
	if err != nil {
		return err
	}
	var mu sync.Mutex // one whole line per write: done lines come from many goroutines
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
	}
	var done func(int)
	status := time.Second
	if events {
		done = func(id int) { say("done %d\n", id) }
		status = 10 * time.Millisecond
		if stdin != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				_, _ = io.Copy(io.Discard, stdin)
				cancel()
			}()
		}
	}
	// The pipeline gets its own context: the signal asks for Stop, not for a
	// cancel, so that the items in flight are finished and acked.
	var opts []pipeline.Option
	if cfg.Trace {
		// Every call traced, its span printed: the jobs' traces, continued
		// from the producer's traceparent headers.
		tp := printedSpans(say)
		defer func() { _ = tp.Shutdown(context.Background()) }()
		opts = append(opts, otel.Instrument(otel.TracerProvider(tp), otel.CallEvery(1), otel.PipelineName("jsworker")))
	}
	pp, err := startPipe(context.Background(), js, cons, newWorker(cfg), cfg, done, opts...)
	if err != nil {
		return err
	}
	if cfg.Metrics != "" {
		url, stop, err := metricsrv.Serve(cfg.Metrics, prom.NewCollector(pp.p, "jsworker"))
		if err != nil {
			pp.p.Stop()
			<-pp.done
			return err
		}
		defer stop()
		say("worker: metrics on %s\n", url)
	}
	say("worker: consuming %s as %q; Ctrl-C stops\n", jobsStream, durableName)
	tick := time.NewTicker(status)
	defer tick.Stop()
	var last int64
	for {
		select {
		case err := <-pp.done:
			return err
		case <-tick.C:
			if events {
				st := pp.c.Stats()
				say("status processed=%d received=%d in_flight=%d\n", pp.processed.Load(), st.Received, st.InFlight)
				continue
			}
			if n := pp.processed.Load(); n != last {
				last = n
				say("worker: processed=%d %v\n", n, pp.c.Stats())
			}
		case <-ctx.Done():
			pp.p.Stop()
			err := <-pp.done
			if err := nc.Flush(); err != nil {
				return err
			}
			st := pp.c.Stats()
			say("worker: stopped processed=%d acked=%d redelivered=%d dead=%d released=%d in_flight=%d\n",
				pp.processed.Load(), st.Acked, st.Redelivered, st.Dead, st.Released, st.InFlight)
			return err
		}
	}
}
