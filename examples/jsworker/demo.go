package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errKilled is what the demo's killed worker dies of.
var errKilled = errors.New("worker 1 killed")

// demoWorkers is how many worker pipelines the demo runs.
const demoWorkers = 3

// runDemo publishes cfg.Jobs jobs, runs three workers that share the durable
// consumer, each on its own connection as separate processes would be,
// kills the first one half-way (its context is cancelled: it acks nothing
// more, like a crash), waits until the server has every job settled, stops
// the other two gracefully and checks the streams: every job has a result or
// a dead letter. With url empty it runs on an embedded server.
func runDemo(ctx context.Context, url string, cfg Config, out io.Writer) error {
	if url == "" {
		dir, err := os.MkdirTemp("", "jsworker-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		s, err := startServer("127.0.0.1:0", dir)
		if err != nil {
			return err
		}
		defer stopServer(s)
		url = s.ClientURL()
	}
	nc, js, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, name := range []string{jobsStream, deadStream, resultsStream} { // a fresh start
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	cons, err := setup(ctx, js, cfg)
	if err != nil {
		return err
	}
	if err := produce(ctx, js, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d jobs (%d not JSON, %d failing) on %s\n", cfg.Jobs, cfg.Poison, cfg.Failing, url)

	w := newWorker(cfg)
	crashCtx, crash := context.WithCancelCause(ctx)
	defer crash(nil)
	pipes := make([]*pipe, demoWorkers)
	conns := make([]*nats.Conn, demoWorkers)
	defer func() {
		for _, pp := range pipes {
			if pp != nil {
				_ = pp.stop()
			}
		}
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range pipes {
		wnc, wjs, err := connect(ctx, url)
		if err != nil {
			return err
		}
		conns[i] = wnc
		wcons, err := wjs.Consumer(ctx, jobsStream, durableName)
		if err != nil {
			return err
		}
		pctx := ctx
		if i == 0 {
			pctx = crashCtx
		}
		if pipes[i], err = startPipe(pctx, wjs, wcons, w, cfg); err != nil {
			return err
		}
	}

	processed := func() (n int64) {
		for _, pp := range pipes {
			n += pp.processed.Load()
		}
		return n
	}
	killed := false
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2*time.Minute + 10*cfg.AckWait)
	for settled := false; !settled; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			fmt.Fprintln(out, "gave up waiting for every job to be settled")
			settled = true
		case <-tick.C:
			if !killed && processed() >= int64(cfg.Jobs/2) {
				killed = true
				held := pipes[0].c.Stats().InFlight
				crash(errKilled)
				if err := pipes[0].wait(); !errors.Is(err, errKilled) {
					return fmt.Errorf("worker 1 ended with %v", err)
				}
				conns[0].Close()
				fmt.Fprintf(out, "killed worker 1 after it processed %d jobs, holding %d un-acked messages\n",
					pipes[0].processed.Load(), held)
				continue
			}
			if killed {
				info, err := cons.Info(ctx)
				if err != nil {
					return err
				}
				settled = info.NumPending == 0 && info.NumAckPending == 0
			}
		}
	}
	for _, pp := range pipes[1:] {
		if err := pp.stop(); err != nil {
			return err
		}
	}
	for _, c := range conns[1:] {
		if err := c.Flush(); err != nil {
			return err
		}
	}

	var redelivered uint64
	for i, pp := range pipes {
		st := pp.c.Stats()
		redelivered += st.Redelivered
		fmt.Fprintf(out, "worker %d: processed=%d %v\n", i+1, pp.processed.Load(), st)
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
	fmt.Fprintf(out, "published=%d processed=%d acked=%d redelivered=%d lost=%d dead=%d\n",
		cfg.Jobs, processed(), acked, redelivered, lost, dead)
	if lost != 0 {
		return fmt.Errorf("%d jobs lost", lost)
	}
	return nil
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
