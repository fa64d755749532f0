// Command jsworker spreads one pipeline over several processes with NATS
// JetStream: a producer publishes jobs to a stream, workers share one durable
// consumer of it, each runs Source → Map → Publish, and every job is handled
// at least once even when a worker dies. Failed jobs are retried, then
// dead-lettered with their error; undecodable ones are dead-lettered at once.
//
// The demo does it all in one process, on an embedded server: it publishes the
// jobs, runs three workers, kills one half-way (a cancel: it acks nothing
// more), lets the other two take over its messages, and ends with one line:
//
//	go run ./jsworker -demo
//	published=2000 processed=1998 acked=2000 redelivered=122 lost=0 dead=4
//
// With a real server, each part runs as its own process:
//
//	go run ./jsworker -role server                 # or: nats-server -js
//	go run ./jsworker -role worker                 # in two terminals or more
//	go run ./jsworker -role producer -jobs 10000
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
	demo := fs.Bool("demo", false, "run producer, three workers and a crash in one process, on an embedded server unless -nats is given")
	role := fs.String("role", "", "run one part: producer, worker or server")
	url := fs.String("nats", "", "NATS server URL (default for the roles: nats://127.0.0.1:4222)")
	listen := fs.String("listen", "127.0.0.1:4222", "address of -role server (loopback only)")
	store := fs.String("store", "", "JetStream store directory of -role server (default: a new temporary one)")
	cfg := Config{}
	fs.IntVar(&cfg.Jobs, "jobs", 2000, "jobs to publish, poison and failing ones included")
	fs.IntVar(&cfg.Poison, "poison", 2, "of those, jobs that are not valid JSON")
	fs.IntVar(&cfg.Failing, "failing", 2, "of those, jobs that always fail")
	fs.IntVar(&cfg.Workers, "workers", 4, "goroutines per worker pipeline")
	fs.DurationVar(&cfg.Work, "work", 2*time.Millisecond, "time one job takes")
	fs.DurationVar(&cfg.AckWait, "ack-wait", 2*time.Second, "how long the server waits for an ack before it delivers a message again")
	fs.IntVar(&cfg.MaxDeliveries, "max-deliveries", 4, "deliveries of a failing job before it is dead-lettered")
	fs.StringVar(&cfg.Metrics, "metrics", "", "-role worker: serve Prometheus metrics on http://ADDR/metrics (a bare :port binds 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.check(); err != nil {
		return err
	}
	switch {
	case *demo && *role != "":
		return errors.New("give -demo or -role, not both")
	case *demo:
		return runDemo(ctx, *url, cfg, stdout)
	}
	if *url == "" {
		*url = "nats://127.0.0.1:4222"
	}
	switch *role {
	case "producer":
		return runProducer(ctx, *url, cfg, stdout)
	case "worker":
		return runWorkerRole(ctx, *url, cfg, stdout)
	case "server":
		return runServerRole(ctx, *listen, *store, stdout)
	case "":
		return errors.New("nothing to do: give -demo or -role producer|worker|server")
	default:
		return fmt.Errorf("unknown -role %q: want producer, worker or server", *role)
	}
}
