package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// demoWorkers is how many worker processes the demo starts.
const demoWorkers = 3

// demoServer returns url, or, if it is empty, the URL of an embedded server
// on a free loopback port, with a store that stop removes.
func demoServer(url string) (string, func(), error) {
	if url != "" {
		return url, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "jsworker-demo-")
	if err != nil {
		return "", nil, err
	}
	s, err := startServer("127.0.0.1:0", dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return s.ClientURL(), func() {
		stopServer(s)
		os.RemoveAll(dir)
	}, nil
}

// freshStart deletes the demo's streams (and so its consumer) and creates
// startDemo starts what the demo and the trace run share: the server
// (embedded if url is empty; its URL is returned), a connection, and the
// streams and consumer set up afresh. closeAll closes the connection, then
// the server.
func startDemo(ctx context.Context, url string, cfg Config) (string, jetstream.JetStream, jetstream.Consumer, func(), error) {
	url, closeServer, err := demoServer(url)
	if err != nil {
		return "", nil, nil, nil, err
	}
	nc, js, err := connect(ctx, url)
	if err != nil {
		closeServer()
		return "", nil, nil, nil, err
	}
	closeAll := func() {
		nc.Close()
		closeServer()
	}
	cons, err := freshStart(ctx, js, cfg)
	if err != nil {
		closeAll()
		return "", nil, nil, nil, err
	}
	return url, js, cons, closeAll, nil
}

// them again, empty.
func freshStart(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, error) {
	for _, name := range []string{jobsStream, deadStream, resultsStream} {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return setup(ctx, js, cfg)
}

// runDemo publishes cfg.Jobs jobs and starts three worker processes that
// share the durable consumer, each with its own connection. Half-way it
// kills the first with SIGKILL: the process, its connection and every
// message it held un-acked go at once, as when a machine dies. Once the
// server has every job settled (the killed worker's messages come back to
// the others after AckWait), it stops the other two gracefully and checks:
// every job has a result or a dead letter (lost=0), and the jobs processed
// twice (twice) are no more than the killed worker could hold un-acked
// (bound, see unackedBound). With url empty it runs on an embedded server.
func runDemo(ctx context.Context, url string, cfg Config, out, stderr io.Writer) error {
	url, js, cons, closeAll, err := startDemo(ctx, url, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := produce(ctx, js, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d jobs (%d not JSON, %d failing) on %s\n", cfg.Jobs, cfg.Poison, cfg.Failing, url)

	led := newLedger()
	procs, err := startWorkers(demoWorkers, url, cfg, led, stderr)
	if err != nil {
		return err
	}
	defer stopAll(procs, true)
	if err := waitReady(ctx, procs); err != nil {
		return err
	}
	fmt.Fprintf(out, "started %d worker processes (pids", demoWorkers)
	for _, pr := range procs {
		fmt.Fprintf(out, " %d", pr.cmd.Process.Pid)
	}
	fmt.Fprintln(out, ")")

	// Kill worker 1 half-way.
	victim := procs[0]
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-victim.exit:
			return fmt.Errorf("worker 1 exited before it was killed: %v", victim.err)
		case <-tick.C:
			total, _ := led.total()
			done = total >= cfg.Jobs/2
		}
	}
	if err := victim.kill(); err != nil {
		return err
	}
	processed, held, _ := victim.report()
	bound := unackedBound(cfg)
	fmt.Fprintf(out, "killed worker 1 (SIGKILL) after it processed %d jobs; it last reported %d un-acked messages, and can hold at most %d\n",
		processed, held, bound)

	if err := waitSettled(ctx, cons, 2*time.Minute+10*cfg.AckWait); err != nil {
		return err
	}
	if err := stopAll(procs[1:], false); err != nil {
		return err
	}

	var redelivered int
	for _, pr := range procs {
		processed, _, stopped := pr.report()
		if pr == victim {
			fmt.Fprintf(out, "worker 1: processed=%d, then killed\n", processed)
			continue
		}
		r, _ := field(stopped, "redelivered")
		redelivered += r
		fmt.Fprintf(out, "worker %d: %s\n", pr.n, strings.TrimPrefix(stopped, "worker: "))
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	acked := uint64(cfg.Jobs) - info.NumPending - uint64(info.NumAckPending)
	done, err := distinctJobs(ctx, js, resultsStream, func(m *jetstream.RawStreamMsg) (int, error) {
		var r Result
		err := json.Unmarshal(m.Data, &r)
		return r.ID, err
	})
	if err != nil {
		return err
	}
	dead, err := distinctJobs(ctx, js, deadStream, func(m *jetstream.RawStreamMsg) (int, error) {
		return strconv.Atoi(m.Header.Get("Natsjs-Sequence"))
	})
	if err != nil {
		return err
	}
	lost := cfg.Jobs - done - dead
	total, twice := led.total()
	fmt.Fprintf(out, "published=%d processed=%d acked=%d redelivered=%d lost=%d dead=%d twice=%d bound=%d\n",
		cfg.Jobs, total, acked, redelivered, lost, dead, twice, bound)
	switch {
	case lost != 0:
		return fmt.Errorf("%d jobs lost", lost)
	case twice > bound:
		return fmt.Errorf("%d jobs processed twice: more than the %d messages the killed worker could hold", twice, bound)
	}
	return nil
}

// waitSettled waits until the server has every message of cons settled:
// none left to deliver, none awaiting an ack.
func waitSettled(ctx context.Context, cons jetstream.Consumer, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jobs still unsettled after %v: %d to deliver, %d awaiting an ack",
				limit, info.NumPending, info.NumAckPending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// distinctJobs counts the distinct keys of the messages stored in stream.
func distinctJobs(ctx context.Context, js jetstream.JetStream, stream string, key func(*jetstream.RawStreamMsg) (int, error)) (int, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	seen := make(map[int]bool)
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			return 0, fmt.Errorf("%s message %d: %w", stream, seq, err)
		}
		k, err := key(m)
		if err != nil {
			return 0, fmt.Errorf("%s message %d: %w", stream, seq, err)
		}
		seen[k] = true
	}
	return len(seen), nil
}
