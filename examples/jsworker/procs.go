package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// childEnv is set (to "1") in the environment of the worker processes that
// -demo and -scale start from their own executable. jsworker itself does not
// read it; a test binary that runs the demo reads it to act as jsworker.
const childEnv = "JSWORKER_CHILD"

// ledger counts how many times each job was processed, over every worker
// process, from their "done" lines.
type ledger struct {
	mu sync.Mutex
	n  map[int]int
}

func newLedger() *ledger { return &ledger{n: make(map[int]int)} }

func (l *ledger) add(id int) {
	l.mu.Lock()
	l.n[id]++
	l.mu.Unlock()
}

// total is how many times jobs were processed; twice how many of those were
// a job processed again.
func (l *ledger) total() (total, twice int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.n {
		total += c
		twice += c - 1
	}
	return total, twice
}

// proc is a worker process (-role worker -events) and what it reported.
type proc struct {
	n     int // 1, 2, …
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready chan struct{} // closed when it consumes
	exit  chan struct{} // closed when it has exited; err is then set
	err   error

	mu        sync.Mutex
	processed int        // jobs it processed
	inFlight  int        // un-acked messages it held at its last status line
	stopped   string     // its "worker: stopped" line, after a graceful stop
	spans     []spanLine // the spans it printed (-trace)
}

// startWorkers starts n worker processes from this executable, connected to
// url, with cfg's worker settings; their "done" lines go to led, their
// standard error to stderr.
func startWorkers(n int, url string, cfg Config, led *ledger, stderr io.Writer) ([]*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this executable to start workers: %w", err)
	}
	args := []string{"-role", "worker", "-events", "-nats", url,
		"-workers", strconv.Itoa(cfg.Workers), "-work", cfg.Work.String(), "-ack-wait", cfg.AckWait.String(),
		"-max-deliveries", strconv.Itoa(cfg.MaxDeliveries), "-flaky", strconv.Itoa(cfg.Flaky)}
	if cfg.Trace {
		args = append(args, "-trace")
	}
	var procs []*proc
	for i := 1; i <= n; i++ {
		pr, err := startProc(i, exe, args, led, stderr)
		if err != nil {
			stopAll(procs, true)
			return nil, err
		}
		procs = append(procs, pr)
	}
	return procs, nil
}

func startProc(n int, exe string, args []string, led *ledger, stderr io.Writer) (*proc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", n, err)
	}
	pr := &proc{n: n, cmd: cmd, stdin: stdin, ready: make(chan struct{}), exit: make(chan struct{})}
	go func() {
		pr.read(stdout, led)
		pr.err = cmd.Wait()
		close(pr.exit)
	}()
	return pr, nil
}

// read takes in the process's lines until it exits.
func (pr *proc) read(stdout io.Reader, led *ledger) {
	sc := bufio.NewScanner(stdout)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "done "):
			id, err := strconv.Atoi(strings.TrimPrefix(line, "done "))
			if err == nil {
				led.add(id)
				pr.mu.Lock()
				pr.processed++
				pr.mu.Unlock()
			}
		case strings.HasPrefix(line, "status "):
			if v, ok := field(line, "in_flight"); ok {
				pr.mu.Lock()
				pr.inFlight = v
				pr.mu.Unlock()
			}
		case strings.HasPrefix(line, "worker: consuming"):
			if !isReady {
				isReady = true
				close(pr.ready)
			}
		case strings.HasPrefix(line, "span "):
			if sp, ok := parseSpan(line); ok {
				pr.mu.Lock()
				pr.spans = append(pr.spans, sp)
				pr.mu.Unlock()
			}
		case strings.HasPrefix(line, "worker: stopped"):
			pr.mu.Lock()
			pr.stopped = line
			pr.mu.Unlock()
		}
	}
	_, _ = io.Copy(io.Discard, stdout) // a line too long for the scanner
}

// field reads name=<int> from a line of space-separated fields.
func field(line, name string) (int, bool) {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return 0, false
}

func (pr *proc) report() (processed, inFlight int, stopped string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.processed, pr.inFlight, pr.stopped
}

// traced returns the spans the process printed.
func (pr *proc) traced() []spanLine {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]spanLine(nil), pr.spans...)
}

// waitReady waits until every process consumes, or one has exited.
func waitReady(ctx context.Context, procs []*proc) error {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	for _, pr := range procs {
		select {
		case <-pr.ready:
		case <-pr.exit:
			return fmt.Errorf("worker %d exited before it consumed: %v", pr.n, pr.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("worker %d did not start consuming in 30s", pr.n)
		}
	}
	return nil
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (pr *proc) kill() error {
	if err := pr.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-pr.exit
	var exit *exec.ExitError
	if !errors.As(pr.err, &exit) || exit.Success() {
		return fmt.Errorf("worker %d was not killed: %v", pr.n, pr.err)
	}
	return nil
}

// stop asks the process to stop gracefully (its stdin ends) and waits for
// it, at most a minute: then it is killed.
func (pr *proc) stop() error {
	_ = pr.stdin.Close()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-pr.exit:
		if pr.err != nil {
			return fmt.Errorf("worker %d: %w", pr.n, pr.err)
		}
		return nil
	case <-t.C:
		_ = pr.kill()
		return fmt.Errorf("worker %d did not stop in a minute; killed", pr.n)
	}
}

// stopAll stops the processes still running, all at once (kills them if
// hard), and waits for them; the first error is returned.
func stopAll(procs []*proc, hard bool) error {
	if !hard {
		for _, pr := range procs {
			_ = pr.stdin.Close()
		}
	}
	var first error
	for _, pr := range procs {
		select {
		case <-pr.exit:
			if !hard && pr.err != nil && first == nil {
				first = fmt.Errorf("worker %d: %w", pr.n, pr.err)
			}
			continue
		default:
		}
		var err error
		if hard {
			err = pr.kill()
		} else {
			err = pr.stop()
		}
		if first == nil {
			first = err
		}
	}
	return first
}
