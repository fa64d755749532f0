// Command patterns runs the classic Go concurrency patterns twice: written
// by hand with goroutines, channels, sync and x/sync, and as one call of
// the pipeline package, so that the two can be read and run side by side.
// docs/patterns.md explains each pair and the pitfall the pipeline version
// removes.
//
//	go run ./patterns -list        # the patterns
//	go run ./patterns worker-pool  # run both versions of one
//	go run ./patterns all          # run every pattern
//	go run ./patterns -slow -http 127.0.0.1:8080 all  # watch each pipeline at http://127.0.0.1:8080/
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ec0f1147/pipeline/examples/internal/metricsrv"
	"github.com/ec0f1147/pipeline/live"
)

// pattern is one classic pattern and its two versions, each a demo that
// prints what it did.
type pattern struct {
	Name    string
	Title   string
	Pitfall string // what goes wrong in the hand-written version when a detail is missed
	File    string // where both versions live
	Hand    func(w io.Writer) error
	Pipe    func(w io.Writer) error
}

// patterns in the order docs/patterns.md presents them.
var patterns = []pattern{
	{"worker-pool", "Worker pool over a jobs channel", "deadlock on an unread channel", "workerpool.go", workerPoolDemoHand, workerPoolDemoPipe},
	{"errgroup", "errgroup with SetLimit", "lost errors, and a panic that kills the process", "errgroup.go", errgroupDemoHand, errgroupDemoPipe},
	{"semaphore", "Buffered-channel semaphore", "a slot never released on an early return", "semaphore.go", semaphoreDemoHand, semaphoreDemoPipe},
	{"weighted", "Weighted semaphore", "a job heavier than the budget waits forever", "weighted.go", weightedDemoHand, weightedDemoPipe},
	{"fan-in", "Fan-out, fan-in", "closing the merged channel too early or never", "fanin.go", fanInDemoHand, fanInDemoPipe},
	{"stages", "Multi-stage pipeline with early return", "goroutine leak on early return", "stages.go", stagesDemoHand, stagesDemoPipe},
	{"backpressure", "Blocking backpressure", "an unbounded queue hides a slow consumer", "backpressure.go", backpressureDemoHand, backpressureDemoPipe},
	{"dropping", "Dropping under pressure", "work dropped without anyone counting it", "dropping.go", droppingDemoHand, droppingDemoPipe},
	{"ticker", "Ticker rate limit", "a rate-limited loop that ignores cancellation", "ticker.go", tickerDemoHand, tickerDemoPipe},
	{"shutdown", "Graceful shutdown with drain", "dropped work on shutdown", "shutdown.go", shutdownDemoHand, shutdownDemoPipe},
	{"timeout", "Hung-worker timeout", "a goroutine leaked per timeout", "timeout.go", timeoutDemoHand, timeoutDemoPipe},
	{"caps", "Per-job concurrency caps inside a shared pool", "a slot held while waiting for another", "caps.go", capsDemoHand, capsDemoPipe},
	{"kill", "Kill-channel cleanup", "workers leaked on an early return", "kill.go", killDemoHand, killDemoPipe},
	{"keyed", "Per-key ordering", "a slow key stalls every key behind it", "keyed.go", keyedDemoHand, keyedDemoPipe},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "patterns:", err)
		os.Exit(1)
	}
}

// run lists the patterns or runs the ones named.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("patterns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.Bool("list", false, "list the patterns")
	httpAddr := fs.String("http", "", "serve the live view of every pattern's pipeline on http://ADDR/ (a bare :port binds 127.0.0.1)")
	slow := fs.Bool("slow", false, "slow every call of the pipelines' stage functions by -pace, to watch them in the live view")
	pace := fs.Duration("pace", 100*time.Millisecond, "with -slow, how much longer each call takes (after the call: not in its latency)")
	linger := fs.Duration("linger", time.Second, "with -http, keep serving the live view this long after the last pattern")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: patterns -list | patterns [-slow] [-http ADDR] NAME... | patterns [-slow] [-http ADDR] all")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		for _, p := range patterns {
			fmt.Fprintf(stdout, "%-13s %s (pitfall: %s)\n", p.Name, p.Title, p.Pitfall)
		}
		return nil
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("name a pattern, or -list")
	}
	var todo []pattern
	for _, name := range fs.Args() {
		if name == "all" {
			todo = append(todo, patterns...)
			continue
		}
		p, ok := find(name)
		if !ok {
			return fmt.Errorf("no pattern %q (try -list)", name)
		}
		todo = append(todo, p)
	}
	if *slow && *pace <= 0 {
		return fmt.Errorf("-pace must be positive")
	}
	if *linger < 0 {
		return fmt.Errorf("-linger must not be negative")
	}
	defer watchAll(nil, 0)
	var view *live.Handler
	if *httpAddr != "" {
		view = live.New()
		url, stop, err := metricsrv.ServeHandler(*httpAddr, view)
		if err != nil {
			return err
		}
		defer func() {
			time.Sleep(*linger) // the page gets the last pipeline's final counts
			stop()
		}()
		fmt.Fprintf(stderr, "live view: %s\n", url)
	}
	if *slow {
		watchAll(view, *pace)
	} else {
		watchAll(view, 0)
	}
	for i, p := range todo {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := runOne(stdout, p); err != nil {
			return err
		}
	}
	return nil
}

func find(name string) (pattern, bool) {
	for _, p := range patterns {
		if p.Name == name {
			return p, true
		}
	}
	return pattern{}, false
}

func runOne(w io.Writer, p pattern) error {
	fmt.Fprintf(w, "== %s: %s (%s)\n", p.Name, p.Title, p.File)
	fmt.Fprintf(w, "pitfall of the hand-written version: %s\n", p.Pitfall)
	watchPattern(p.Name)
	for _, side := range []struct {
		label string
		demo  func(io.Writer) error
	}{{"hand-written", p.Hand}, {"pipeline", p.Pipe}} {
		var b strings.Builder
		if err := side.demo(&b); err != nil {
			return fmt.Errorf("%s, %s: %w", p.Name, side.label, err)
		}
		fmt.Fprintf(w, "-- %s\n%s", side.label, b.String())
	}
	return nil
}
