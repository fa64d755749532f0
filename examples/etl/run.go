package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/examples/internal/metricsrv"
	"github.com/ec0f1147/pipeline/live"
	"github.com/ec0f1147/pipeline/prom"
	"golang.org/x/term"
)

// options are the command line.
type options struct {
	Config
	query    string
	diagram  string
	progress string
	every    time.Duration
	metrics  string
	http     string        // serve the live view there
	httpStop bool          // with a Stop control
	linger   time.Duration // keep serving it this long after the end
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("etl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Src, "src", "", "tree to index (default: $(go env GOROOT)/src)")
	fs.StringVar(&o.DB, "db", "index.db", "SQLite database to create, or to resume an interrupted run in")
	fs.IntVar(&o.Workers, "workers", runtime.NumCPU(), "parse workers")
	fs.IntVar(&o.BatchSize, "batch", 500, "rows per transaction")
	fs.DurationVar(&o.BatchWait, "batch-wait", 200*time.Millisecond, "longest a row waits for its batch")
	fs.StringVar(&o.query, "query", "", "print where NAME is declared, from the database, and exit")
	fs.StringVar(&o.diagram, "diagram", "", "write the pipeline's Mermaid diagram to this Markdown file on exit")
	fs.StringVar(&o.progress, "progress", "auto", "progress display: auto, bars, lines or none")
	fs.DurationVar(&o.every, "every", time.Second, "progress refresh interval")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on http://ADDR/metrics while indexing (a bare :port binds 127.0.0.1)")
	fs.StringVar(&o.http, "http", "", "serve the live view of the pipeline on http://ADDR/ while indexing (a bare :port binds 127.0.0.1)")
	fs.BoolVar(&o.httpStop, "http-stop", false, "give the live view a Stop button that drains the job (keep -http on 127.0.0.1)")
	fs.DurationVar(&o.linger, "linger", time.Second, "with -http, keep serving the live view this long after the job ends")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.linger < 0 {
		return o, errors.New("-linger must not be negative")
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch o.progress {
	case "auto", "bars", "lines", "none":
	default:
		return o, fmt.Errorf("-progress must be auto, bars, lines or none, not %q", o.progress)
	}
	if o.every <= 0 {
		return o, errors.New("-every must be positive")
	}
	return o, nil
}

// run is the whole program: it indexes (or queries) as args say, writes
// progress to stderr and the summary to stdout. While it indexes, the first
// of signals (os.Interrupt and SIGTERM if none are given) stops the job
// gracefully and the second cancels it, by [pipeline.StopOnSignal].
func run(ctx context.Context, args []string, stdout, stderr io.Writer, signals ...os.Signal) error {
	terminal := stderr              // mpb must see the *os.File to draw on a terminal
	stderr = &syncWriter{w: stderr} // progress lines come from their own goroutine
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.query != "" {
		return printQuery(ctx, stdout, o.DB, o.query)
	}
	if o.Src == "" {
		if o.Src, err = goroot(); err != nil {
			return err
		}
	}

	job, err := Start(ctx, o.Config)
	if err != nil {
		return err
	}
	defer pipeline.StopOnSignal(job.Pipeline(), signals...)()
	if o.metrics != "" {
		url, stop, err := metricsrv.Serve(o.metrics, prom.NewCollector(job.Pipeline(), "etl"))
		if err != nil {
			job.Pipeline().Stop()
			_, _ = job.Wait()
			return err
		}
		defer stop()
		fmt.Fprintf(stderr, "metrics: %s\n", url)
	}
	if o.http != "" {
		opts := []live.Option{live.Watch("etl", job.Pipeline())}
		if o.httpStop {
			opts = append(opts, live.AllowStop())
		}
		url, stop, err := metricsrv.ServeHandler(o.http, live.New(opts...))
		if err != nil {
			job.Pipeline().Stop()
			_, _ = job.Wait()
			return err
		}
		defer func() {
			time.Sleep(o.linger) // the page gets the final counts and the result
			stop()
		}()
		fmt.Fprintf(stderr, "live view: %s\n", url)
	}

	stopProgress := func() {}
	switch progressMode(o.progress, terminal) {
	case "bars":
		stopProgress = startBars(job.Pipeline(), terminal, o.every/5)
	case "lines":
		stopProgress = startLines(job.Pipeline(), stderr, o.every)
	}
	sum, err := job.Wait()
	stopProgress()

	printSummary(stdout, o.Config, sum, err)
	if o.diagram != "" {
		if derr := writeDiagram(o.diagram, job.Pipeline().Diagram()); derr != nil && err == nil {
			err = derr
		}
	}
	return err
}

// progressMode resolves "auto": live bars on a terminal, a line per
// interval otherwise.
func progressMode(mode string, w io.Writer) string {
	if mode != "auto" {
		return mode
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "bars"
	}
	return "lines"
}

// goroot is the source tree of the Go installation on PATH.
func goroot() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("finding GOROOT (pass -src): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "src"), nil
}

// printSummary reports a run; err is how it ended.
func printSummary(w io.Writer, cfg Config, s Summary, err error) {
	fmt.Fprintf(w, "indexed %s into %s\n", cfg.Src, cfg.DB)
	switch {
	case err != nil:
		fmt.Fprintf(w, "  aborted (%v): the database holds the %d rows committed before; rows in flight were discarded\n", err, s.Declarations)
	case s.Stopped:
		fmt.Fprintln(w, "  stopped early: every file found before the stop was committed")
	}
	if s.Resumed > 0 {
		fmt.Fprintf(w, "  resumed       after the %d files an interrupted run committed\n", s.Resumed)
	}
	if err != nil || s.Stopped {
		fmt.Fprintf(w, "  checkpoint    %d files done: run again to resume after them\n", s.Next)
	}
	fmt.Fprintf(w, "  files         %d\n", s.Files)
	fmt.Fprintf(w, "  declarations  %d\n", s.Declarations)
	fmt.Fprintf(w, "  skipped       %d (could not be parsed)\n", s.Skipped)
	fmt.Fprintf(w, "  elapsed       %s\n", s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  rows/s        %.0f\n", s.RowsPerSecond())
	fmt.Fprintf(w, "query it: run again with -db %s -query NewReader (any declared name)\n", cfg.DB)
}

func printQuery(ctx context.Context, w io.Writer, db, name string) error {
	rows, err := Query(ctx, db, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d declarations\n", name, len(rows))
	for _, r := range rows {
		fmt.Fprintf(w, "  %-6s %-28s %s:%d\n", r.Kind, r.Package+"."+r.Name, r.File, r.Line)
	}
	return nil
}

// writeDiagram writes a Markdown file holding the diagram in a mermaid
// block, which GitHub draws.
func writeDiagram(path, diagram string) error {
	return os.WriteFile(path, []byte("```mermaid\n"+diagram+"```\n"), 0o644)
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
