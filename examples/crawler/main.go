// Command crawler crawls a small web site it serves itself on the loopback
// interface, politely: an adaptive limiter per host shared by every stage
// that talks to the host (it backs off when the host fails or slows down),
// a global limiter over all hosts, a rate limit per host, a timeout on each
// attempt and retries for the pages that fail. It prints what it fetched,
// what it retried, what timed out, and where each host's limit ended.
//
//	go run ./crawler
//	go run ./crawler -per-host 1 -every 50ms -diagram
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "crawler:", err)
		os.Exit(1)
	}
}

// run starts the local site, crawls it as args say and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crawler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pages := fs.Int("pages", 6, "pages per host")
	delay := fs.Duration("delay", 30*time.Millisecond, "time the site takes to serve a page")
	cfg := Config{}
	fs.IntVar(&cfg.PerHost, "per-host", 2, "most requests in flight per host")
	fs.DurationVar(&cfg.Slow, "slow", 0, "a request slower than this makes its host's limit back off (0: only failures)")
	fs.IntVar(&cfg.Total, "total", 4, "requests in flight over all hosts")
	fs.DurationVar(&cfg.Every, "every", 20*time.Millisecond, "one page request per host per interval (after the burst)")
	fs.IntVar(&cfg.Burst, "burst", 2, "page requests a host may get at once before the rate applies")
	fs.DurationVar(&cfg.Timeout, "timeout", 250*time.Millisecond, "deadline of each attempt")
	fs.IntVar(&cfg.Attempts, "attempts", 3, "attempts per page")
	fs.DurationVar(&cfg.Backoff, "backoff", 10*time.Millisecond, "wait before a retry")
	diagram := fs.Bool("diagram", false, "also print the pipeline's Mermaid diagram")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	site := NewSite(*pages, *delay)
	defer site.Close()
	transport := &http.Transport{MaxIdleConnsPerHost: cfg.PerHost}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	var seeds []Seed
	for _, h := range site.Hosts {
		seeds = append(seeds, Seed{Name: h.Name, URL: h.URL + "/"})
	}
	report, err := Crawl(ctx, client, seeds, cfg)
	if report != nil {
		printReport(stdout, report)
		fmt.Fprintf(stdout, "at most %d requests at once over all hosts (limit %d); per host:", report.MaxInFlight, cfg.Total)
		for _, h := range site.Hosts {
			fmt.Fprintf(stdout, " %s %d", h.Name, report.MaxInFlightPerHost[h.Name])
		}
		fmt.Fprintf(stdout, " (limit %d)\n", cfg.PerHost)
		fmt.Fprint(stdout, "adaptive limit per host at the end:")
		for _, h := range site.Hosts {
			fmt.Fprintf(stdout, " %s %d (%d backoffs)", h.Name, report.Limit[h.Name], report.Backoffs[h.Name])
		}
		fmt.Fprintln(stdout)
		if *diagram {
			fmt.Fprintf(stdout, "\n```mermaid\n%s```\n", report.Diagram)
		}
	}
	return err
}

func printReport(w io.Writer, r *Report) {
	retried := 0
	for _, p := range r.Pages {
		if p.Attempts > 1 {
			retried++
		}
	}
	timedOut := 0
	for _, f := range r.Failures {
		if f.TimedOut {
			timedOut++
		}
	}
	fmt.Fprintf(w, "fetched %d pages (%d after retries), %d failed (%d timed out), %d retries in %s\n",
		len(r.Pages), retried, len(r.Failures), timedOut, r.Retries, r.Elapsed.Round(time.Millisecond))
	for _, p := range r.Pages {
		fmt.Fprintf(w, "  %-5s %-8s %3d %5d B  %s%s\n", p.Host, path(p.URL), p.Status, p.Bytes, p.Title, attempts(p.Attempts))
	}
	for _, f := range r.Failures {
		what := "failed"
		if f.TimedOut {
			what = "timed out"
		}
		fmt.Fprintf(w, "  %-5s %-8s %s%s: %v\n", f.Host, path(f.URL), what, attempts(f.Attempts), f.Err)
	}
}

func attempts(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (%d attempts)", n)
}

func path(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Path
}
