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
	"github.com/ec0f1147/pipeline/prom"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

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
	once      sync.Once
	err       error
}

// wait waits for the pipeline's end and returns its result; it may be called
// many times.
func (pp *pipe) wait() error {
	pp.once.Do(func() { pp.err = <-pp.done })
	return pp.err
}

// stop stops the pipeline gracefully and returns its result.
func (pp *pipe) stop() error {
	pp.p.Stop()
	return pp.wait()
}

// startPipe starts a worker pipeline on the durable consumer cons: it
// decodes jobs, runs w.process on them with cfg.Workers goroutines, and
// publishes each result to the results stream, acking the job only once the
// result is stored. Failed jobs are retried after a short backoff, then
// dead-lettered; poison ones are dead-lettered at once.
func startPipe(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, w *worker, cfg Config) (*pipe, error) {
	c, err := natsjs.NewConsumer(ctx, js, cons, deadSubject,
		natsjs.MaxDeliveries(cfg.MaxDeliveries),
		natsjs.Backoff(func(n int) time.Duration { return time.Duration(n) * 50 * time.Millisecond }),
		natsjs.Prefetch(32))
	if err != nil {
		return nil, err
	}
	pp := &pipe{p: pipeline.New(ctx), c: c, processed: new(atomic.Int64), done: make(chan error, 1)}
	jobs := natsjs.Source(pp.p, c, natsjs.DecodeJSON[Job])
	results := natsjs.Map(pp.p, jobs, cfg.Workers, func(ctx context.Context, j Job) (Result, error) {
		r, err := w.process(ctx, j)
		if err == nil {
			pp.processed.Add(1)
		}
		return r, err
	})
	go func() { pp.done <- natsjs.Publish(pp.p, results, js, resultsSubj, 64, natsjs.EncodeJSON[Result]) }()
	return pp, nil
}

// runWorkerRole is -role worker: one worker pipeline until Ctrl-C (or
// SIGTERM), then a graceful stop; a second signal is not waited for: the
// process ends and the server redelivers what it held.
func runWorkerRole(ctx context.Context, url string, cfg Config, out io.Writer) error {
	nc, js, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer nc.Close()
	cons, err := setup(ctx, js, cfg)
	if err != nil {
		return err
	}
	// The pipeline gets its own context: the signal asks for Stop, not for a
	// cancel, so that the items in flight are finished and acked.
	pp, err := startPipe(context.Background(), js, cons, newWorker(cfg), cfg)
	if err != nil {
		return err
	}
	if cfg.Metrics != "" {
		url, stop, err := metricsrv.Serve(cfg.Metrics, prom.NewCollector(pp.p, "jsworker"))
		if err != nil {
			_ = pp.stop()
			return err
		}
		defer stop()
		fmt.Fprintf(out, "worker: metrics on %s\n", url)
	}
	fmt.Fprintf(out, "worker: consuming %s as %q; Ctrl-C stops\n", jobsStream, durableName)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	for {
		select {
		case err := <-pp.done:
			return err
		case <-tick.C:
			if n := pp.processed.Load(); n != last {
				last = n
				fmt.Fprintf(out, "worker: processed=%d %v\n", n, pp.c.Stats())
			}
		case <-ctx.Done():
			pp.p.Stop()
			err := <-pp.done
			if err := nc.Flush(); err != nil {
				return err
			}
			st := pp.c.Stats()
			fmt.Fprintf(out, "worker: stopped processed=%d acked=%d redelivered=%d dead=%d released=%d in_flight=%d\n",
				pp.processed.Load(), st.Acked, st.Redelivered, st.Dead, st.Released, st.InFlight)
			return err
		}
	}
}
