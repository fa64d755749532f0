// Command jsworker spreads one pipeline over several processes with NATS
// JetStream: a producer publishes jobs to a stream, workers share one durable
// consumer of it, each runs Source → Map → Publish, and every job is handled
// at least once even when a worker dies. Failed jobs are retried, then
// dead-lettered with their error; undecodable ones are dead-lettered at once.
//
// The demo runs a real crash: on an embedded server it publishes the jobs,
// starts three worker processes (this same binary, -role worker), kills one
// half-way with SIGKILL, lets the other two take over its messages once the
// server's AckWait has passed, and checks every job: it ends with a result
// or a dead letter, and the jobs handled twice are within what the killed
// process held un-acked:
//
//	go run ./jsworker -demo
//	published 2000 jobs (2 not JSON, 2 failing) on nats://127.0.0.1:39111
//	started 3 worker processes (pids 21718 21719 21720)
//	killed worker 1 (SIGKILL) after it processed 332 jobs; it last reported 22 un-acked messages, and can hold at most 230
//	worker 1: processed=332, then killed
//	worker 2: stopped processed=834 acked=834 redelivered=44 dead=0 released=0 in_flight=0
//	worker 3: stopped processed=834 acked=834 redelivered=42 dead=4 released=0 in_flight=0
//	published=2000 processed=2000 acked=2000 redelivered=86 lost=0 dead=4 twice=4 bound=230
//
// twice counts the jobs processed a second time because the killed process
// had done them but its acks had not reached the server; bound is what one
// worker process can hold un-acked (see unackedBound).
//
// -scale measures how throughput grows with the number of worker processes,
// on jobs that each wait 5ms (I/O), 8 at a time per process:
//
//	go run ./jsworker -scale
//
// -trace follows jobs across processes: it publishes a few jobs, each in a
// span of its own whose W3C traceparent the job's headers carry, and one
// worker process (-role worker -trace, its pipeline instrumented with the
// otel module) handles them; both print their spans, and it checks that every
// job's natsjs.map span in the worker is the remote child of the producer's
// span, in the same trace:
//
//	go run ./jsworker -trace
//	producer: span name=produce trace=2e58…dcbc span=5011a784df5f0117 parent=0000000000000000 remote=false
//	worker 1: span name=natsjs.map trace=2e58…dcbc span=078250b1519bc147 parent=5011a784df5f0117 remote=true
//	worker 1: span name=natsjs.publish trace=2e58…dcbc span=8e3c07bc65a60154 parent=078250b1519bc147 remote=false
//	…
//	traced=3 continued=3 worker_spans=12
//
// With a real server, each part runs as its own process:
//
//	go run ./jsworker -role server                 # or: nats-server -js
//	go run ./jsworker -role worker                 # in two terminals or more
//	go run ./jsworker -role producer -jobs 10000
//
// (-trace with -role producer or worker prints their spans.)
//
// -nats URL points the roles (and the demo) at a server; Ctrl-C stops a worker
// gracefully: it stops fetching, finishes and acks what it holds, and hands
// back what it fetched but had not started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "jsworker:", err)
		os.Exit(1)
	}
}

// run parses args and runs the role they name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jsworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "publish jobs, start three worker processes, SIGKILL one half-way and check that no job is lost; on an embedded server unless -nats is given")
	scale := fs.Bool("scale", false, "measure the throughput of 1, 2 and 4 worker processes (see -procs) on jobs that wait 5ms, 8 at a time per process")
	procs := fs.String("procs", "1,2,4", "the numbers of worker processes -scale measures")
	rounds := fs.Int("rounds", 3, "how many times -scale measures each number of processes")
	role := fs.String("role", "", "run one part: producer, worker or server")
	events := fs.Bool("events", false, "-role worker: print a line per job done and a status line every 10ms, and stop when stdin ends (for -demo and -scale)")
	url := fs.String("nats", "", "NATS server URL (default for the roles: nats://127.0.0.1:4222)")
	listen := fs.String("listen", "127.0.0.1:4222", "address of -role server (loopback only)")
	store := fs.String("store", "", "JetStream store directory of -role server (default: a new temporary one)")
	cfg := Config{}
	fs.IntVar(&cfg.Jobs, "jobs", 2000, "jobs to publish, poison and failing ones included (-scale: 6000)")
	fs.IntVar(&cfg.Poison, "poison", 2, "of those, jobs that are not valid JSON (-scale: 0)")
	fs.IntVar(&cfg.Failing, "failing", 2, "of those, jobs that always fail (-scale: 0)")
	fs.IntVar(&cfg.Flaky, "flaky", 100, "every n-th job fails the first time a worker meets it; 0: none (-scale: 0)")
	fs.BoolVar(&cfg.Primes, "primes", true, "jobs also count primes, a little CPU work (-scale: false)")
	fs.IntVar(&cfg.Workers, "workers", 4, "goroutines per worker pipeline: jobs in flight per process (-scale: 8)")
	fs.DurationVar(&cfg.Work, "work", 2*time.Millisecond, "time one job waits, as for I/O (-scale: 5ms)")
	fs.DurationVar(&cfg.AckWait, "ack-wait", 2*time.Second, "how long the server waits for an ack before it delivers a message again")
	fs.IntVar(&cfg.MaxDeliveries, "max-deliveries", 5, "deliveries of a failing job before it is dead-lettered (the demo's flaky jobs need up to 5: one failure in each of its 3 worker processes, one delivery to the killed worker, then the success)")
	fs.BoolVar(&cfg.Trace, "trace", false, "alone: publish a few jobs with a traceparent each and show their traces going on in a worker process (on an embedded server unless -nats is given); with -role producer|worker: trace the jobs, printing the spans")
	fs.StringVar(&cfg.Metrics, "metrics", "", "-role worker: serve Prometheus metrics on http://ADDR/metrics (a bare :port binds 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	traceDemo := cfg.Trace && *role == "" && !*demo && !*scale
	switch {
	case *scale:
		scaleDefaults(&cfg, set)
	case traceDemo:
		traceDefaults(&cfg, set)
	}
	if err := cfg.check(); err != nil {
		return err
	}
	switch {
	case *demo && *scale, (*demo || *scale) && *role != "":
		return errors.New("give one of -demo, -scale and -role")
	case cfg.Trace && (*demo || *scale):
		return errors.New("-trace goes alone or with -role producer|worker")
	case traceDemo:
		return runTrace(ctx, *url, cfg, stdout, stderr)
	case *demo:
		return runDemo(ctx, *url, cfg, stdout, stderr)
	case *scale:
		counts, err := parseProcs(*procs)
		if err != nil {
			return err
		}
		if *rounds < 1 {
			return fmt.Errorf("-rounds %d must be >= 1", *rounds)
		}
		return runScale(ctx, *url, cfg, counts, *rounds, stdout, stderr)
	}
	if *url == "" {
		*url = "nats://127.0.0.1:4222"
	}
	switch *role {
	case "producer":
		return runProducer(ctx, *url, cfg, stdout)
	case "worker":
		return runWorkerRole(ctx, *url, cfg, stdout, *events, os.Stdin)
	case "server":
		return runServerRole(ctx, *listen, *store, stdout)
	case "":
		return errors.New("nothing to do: give -demo, -scale or -role producer|worker|server")
	default:
		return fmt.Errorf("unknown -role %q: want producer, worker or server", *role)
	}
}

// scaleDefaults gives -scale its own defaults for the flags not set: many
// jobs that only wait, 8 at a time per process, none failing.
func scaleDefaults(cfg *Config, set map[string]bool) {
	defaults := []struct {
		flag  string
		apply func()
	}{
		{"jobs", func() { cfg.Jobs = 6000 }},
		{"poison", func() { cfg.Poison = 0 }},
		{"failing", func() { cfg.Failing = 0 }},
		{"flaky", func() { cfg.Flaky = 0 }},
		{"primes", func() { cfg.Primes = false }},
		{"workers", func() { cfg.Workers = 8 }},
		{"work", func() { cfg.Work = 5 * time.Millisecond }},
	}
	for _, d := range defaults {
		if !set[d.flag] {
			d.apply()
		}
	}
}

// traceDefaults gives -trace its own defaults for the flags not set: a few
// jobs that succeed at once.
func traceDefaults(cfg *Config, set map[string]bool) {
	defaults := map[string]func(){
		"jobs":    func() { cfg.Jobs = 3 },
		"poison":  func() { cfg.Poison = 0 },
		"failing": func() { cfg.Failing = 0 },
		"flaky":   func() { cfg.Flaky = 0 },
		"primes":  func() { cfg.Primes = false },
	}
	for flag, apply := range defaults {
		if !set[flag] {
			apply()
		}
	}
}

// parseProcs reads -procs: a comma-separated list of process counts.
func parseProcs(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 32 {
			return nil, fmt.Errorf("-procs %q: want numbers from 1 to 32, separated by commas", s)
		}
		counts = append(counts, n)
	}
	return counts, nil
}
