package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Subjects of the tests' streams: jobs to do (JOBS), dead letters (DEAD),
// results (DONE).
const (
	jobsSubject = "jobs.todo"
	deadSubject = "jobs.dead"
	doneSubject = "jobs.done"
)

// job is the item the tests send through JetStream.
type job struct {
	ID int `json:"id"`
}

// startServer starts an embedded NATS server on 127.0.0.1 at port (-1: a
// random one), with JetStream storing in dir if jetStream is set.
func startServer(dir string, port int, jetStream bool) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: jetStream, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		stopServer(s)
		return nil, fmt.Errorf("embedded NATS server not ready")
	}
	return s, nil
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// env is an embedded JetStream server with the tests' streams, and a client.
type env struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
}

// newEnv starts a server with the streams JOBS, DEAD and DONE and connects to
// it; everything is closed when the test ends.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	srv, err := startServer(e.dir, -1, true)
	require.NoError(t, err)
	e.srv = srv
	e.port = srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { stopServer(e.srv) })
	nc, js, err := natsjs.Connect(context.Background(), e.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	e.nc, e.js = nc, js
	for name, subject := range map[string]string{"JOBS": jobsSubject, "DEAD": deadSubject, "DONE": doneSubject} {
		_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
			Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		})
		require.NoError(t, err)
	}
	return e
}

func (e *env) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", e.port) }

// restart shuts the server down and starts it again on the same port with
// the same store.
func (e *env) restart() {
	e.t.Helper()
	stopServer(e.srv)
	srv, err := startServer(e.dir, e.port, true)
	require.NoError(e.t, err)
	e.srv = srv
}

// durable creates the durable pull consumer name on JOBS, with explicit acks
// and the given AckWait; change adjusts the configuration further.
func (e *env) durable(name string, ackWait time.Duration, change ...func(*jetstream.ConsumerConfig)) jetstream.Consumer {
	e.t.Helper()
	cfg := jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait}
	for _, c := range change {
		c(&cfg)
	}
	cons, err := e.js.CreateOrUpdateConsumer(context.Background(), "JOBS", cfg)
	require.NoError(e.t, err)
	return cons
}

// consumer wraps the durable name in a natsjs Consumer that dead-letters to
// jobs.dead.
func (e *env) consumer(name string, ackWait time.Duration, opts ...natsjs.Option) *natsjs.Consumer {
	e.t.Helper()
	c, err := natsjs.NewConsumer(context.Background(), e.js, e.durable(name, ackWait), deadSubject, opts...)
	require.NoError(e.t, err)
	return c
}

// publishJobs publishes jobs first..first+n-1 to jobs.todo and waits until
// the server has stored them all.
func (e *env) publishJobs(first, n int) {
	e.t.Helper()
	for i := first; i < first+n; i++ {
		data, err := json.Marshal(job{ID: i})
		require.NoError(e.t, err)
		_, err = e.js.PublishAsync(jobsSubject, data)
		require.NoError(e.t, err)
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		e.t.Fatal("jobs not stored in 30s")
	}
}

// info returns the server's view of a consumer of JOBS.
func (e *env) info(name string) *jetstream.ConsumerInfo {
	e.t.Helper()
	cons, err := e.js.Consumer(context.Background(), "JOBS", name)
	require.NoError(e.t, err)
	info, err := cons.Info(context.Background())
	require.NoError(e.t, err)
	return info
}

// requireAllSettled waits until the server has no message of consumer name
// left to deliver or awaiting an ack.
func (e *env) requireAllSettled(name string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		info := e.info(name)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	}, 30*time.Second, 10*time.Millisecond, "consumer %s still has messages unsettled", name)
}

// streamMsgs returns every message stored in stream.
func (e *env) streamMsgs(stream string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), stream)
	require.NoError(e.t, err)
	info, err := st.Info(context.Background())
	require.NoError(e.t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		require.NoError(e.t, err)
		out = append(out, m)
	}
	return out
}

// tally counts how often each job was handled, safely from many goroutines.
type tally struct {
	mu sync.Mutex
	n  map[int]int
}

func newTally() *tally { return &tally{n: make(map[int]int)} }

func (t *tally) add(id int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[id]++
	return len(t.n)
}

func (t *tally) count(id int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[id]
}

func (t *tally) distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.n)
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := 0
	for _, c := range t.n {
		s += c
	}
	return s
}
