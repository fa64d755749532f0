package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// The streams and the durable consumer every part of the demo agrees on.
const (
	jobsStream    = "JOBS"
	jobsSubject   = "jobs.todo"
	deadStream    = "JOBS_DEAD"
	deadSubject   = "jobs.dead"
	resultsStream = "RESULTS"
	resultsSubj   = "jobs.done"
	durableName   = "workers"
)

// Config says what the demo publishes and how its workers behave.
type Config struct {
	Jobs, Poison, Failing int           // jobs published, of which not JSON, of which always failing
	Flaky                 int           // every Flaky-th job fails the first time a worker meets it (0: none)
	Primes                bool          // each job also counts primes (CPU work), besides waiting Work
	Workers               int           // goroutines per worker pipeline
	Work                  time.Duration // time one job waits (I/O)
	AckWait               time.Duration // the consumer's AckWait
	MaxDeliveries         int           // deliveries before a failing job is dead-lettered
	Metrics               string        // -role worker: address to serve /metrics on; "": none
	Trace                 bool          // -role worker: trace the pipeline's calls, printing the spans
}

func (c Config) check() error {
	switch {
	case c.Jobs < 1 || c.Poison < 0 || c.Failing < 0 || c.Poison+c.Failing > c.Jobs:
		return fmt.Errorf("-jobs %d must be >= 1 and hold -poison %d and -failing %d", c.Jobs, c.Poison, c.Failing)
	case c.Flaky < 0:
		return fmt.Errorf("-flaky %d must be >= 0", c.Flaky)
	case c.Workers < 1:
		return fmt.Errorf("-workers %d must be >= 1", c.Workers)
	case c.Work < 0 || c.AckWait <= 0:
		return errors.New("-work must be >= 0 and -ack-wait > 0")
	case c.MaxDeliveries < 1:
		return fmt.Errorf("-max-deliveries %d must be >= 1", c.MaxDeliveries)
	}
	return nil
}

// Job is one unit of work: count the primes up to N.
type Job struct {
	ID int `json:"id"`
	N  int `json:"n"`
}

// Result is a job's outcome, published to the results stream.
type Result struct {
	ID     int `json:"id"`
	Primes int `json:"primes"`
}

// setup creates (or updates) the jobs, dead-letter and results streams and
// the workers' durable consumer. Every role calls it, so they can start in
// any order.
func setup(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, error) {
	for name, subject := range map[string]string{jobsStream: jobsSubject, deadStream: deadSubject, resultsStream: resultsSubj} {
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		}); err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, jobsStream, jetstream.ConsumerConfig{
		Durable:   durableName,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   cfg.AckWait,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", durableName, err)
	}
	return cons, nil
}

// produce publishes cfg.Jobs jobs, the first cfg.Poison of them not JSON and
// the next cfg.Failing of them failing (a negative N), and waits until the
// server has stored them all. Without cfg.Primes the jobs count no primes
// (N is 0): they only wait.
func produce(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	return produceTraced(ctx, js, cfg, nil)
}

// produceTraced is produce, and with a tracer tr each job is published in a
// span of its own, whose trace context the job's headers carry.
func produceTraced(ctx context.Context, js jetstream.JetStream, cfg Config, tr trace.Tracer) error {
	for i := 0; i < cfg.Jobs; i++ {
		n := 0
		if cfg.Primes {
			n = 2000 + i%1000
		}
		data, err := json.Marshal(Job{ID: i, N: n})
		switch {
		case i < cfg.Poison:
			data = []byte(fmt.Sprintf("{job %d: not JSON", i))
		case i < cfg.Poison+cfg.Failing:
			data, err = json.Marshal(Job{ID: i, N: -1})
		}
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: jobsSubject, Data: data}
		var span trace.Span
		if tr != nil {
			span, msg.Header = jobHeader(tr)
		}
		_, err = js.PublishMsgAsync(msg)
		if span != nil {
			span.End()
		}
		if err != nil {
			return fmt.Errorf("publish job %d: %w", i, err)
		}
		if i%1000 == 999 {
			if err := waitPublished(ctx, js); err != nil {
				return err
			}
		}
	}
	return waitPublished(ctx, js)
}

func waitPublished(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("the server did not confirm the jobs in 30s")
	}
}

// runProducer is -role producer: publish the jobs and say so.
func runProducer(ctx context.Context, url string, cfg Config, out io.Writer) error {
	nc, js, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := setup(ctx, js, cfg); err != nil {
		return err
	}
	var tr trace.Tracer
	if cfg.Trace {
		// Each job in a span of its own, printed, whose trace the workers go on with.
		var mu sync.Mutex
		tp := printedSpans(func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, format, args...)
		})
		defer func() { _ = tp.Shutdown(context.Background()) }()
		tr = tp.Tracer("jsworker")
	}
	if err := produceTraced(ctx, js, cfg, tr); err != nil {
		return err
	}
	fmt.Fprintf(out, "published=%d\n", cfg.Jobs)
	return nil
}

// worker does the jobs: it fails for a negative N, fails once for every
// cfg.Flaky-th job it meets (a flaky dependency: the retry succeeds; each
// worker process remembers only the jobs it met itself, so a job may fail
// once in each), waits cfg.Work, and counts the primes up to N.
type worker struct {
	cfg   Config
	mu    sync.Mutex
	flaky map[int]bool
}

func newWorker(cfg Config) *worker { return &worker{cfg: cfg, flaky: make(map[int]bool)} }

func (w *worker) process(ctx context.Context, j Job) (Result, error) {
	if j.N < 0 {
		return Result{}, fmt.Errorf("job %d: cannot count primes up to %d", j.ID, j.N)
	}
	if w.cfg.Flaky > 0 && j.ID%w.cfg.Flaky == w.cfg.Flaky-1 {
		w.mu.Lock()
		first := !w.flaky[j.ID]
		w.flaky[j.ID] = true
		w.mu.Unlock()
		if first {
			return Result{}, fmt.Errorf("job %d: flaky dependency timed out", j.ID)
		}
	}
	if w.cfg.Work > 0 {
		t := time.NewTimer(w.cfg.Work)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	return Result{ID: j.ID, Primes: countPrimes(j.N)}, nil
}

func countPrimes(n int) int {
	count := 0
	for i := 2; i <= n; i++ {
		prime := true
		for d := 2; d*d <= i; d++ {
			if i%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			count++
		}
	}
	return count
}
