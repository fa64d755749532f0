package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is an output that the test reads while run writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var summary = regexp.MustCompile(`(?m)^published=(\d+) processed=(\d+) acked=(\d+) redelivered=(\d+) lost=(\d+) dead=(\d+)\n\z`)

func TestDemo_LosesNoJobWhenAWorkerIsKilledHalfway(t *testing.T) {
	var out, errOut syncBuffer
	err := run(context.Background(), []string{"-demo", "-jobs", "400", "-poison", "2", "-failing", "3",
		"-work", "1ms", "-ack-wait", "1s", "-max-deliveries", "3"}, &out, &errOut)
	require.NoError(t, err, "output:\n%s%s", out.String(), errOut.String())

	m := summary.FindStringSubmatch(out.String())
	require.NotNil(t, m, "the output must end with the summary line:\n%s", out.String())
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	published, processed, acked, redelivered, lost, dead := n(1), n(2), n(3), n(4), n(5), n(6)
	assert.Equal(t, 400, published)
	assert.Equal(t, 400, acked, "the server has every job settled")
	assert.Zero(t, lost)
	assert.Equal(t, 5, dead, "the poison and the always-failing jobs")
	assert.GreaterOrEqual(t, processed, 400-5, "every good job processed at least once")
	assert.Positive(t, redelivered, "the killed worker's jobs and the flaky ones came back")
	assert.Contains(t, out.String(), "killed worker 1 after it processed")
}

func TestRoles_WorkersShareTheJobsAProducerPublished(t *testing.T) {
	s, err := startServer("127.0.0.1:0", t.TempDir())
	require.NoError(t, err)
	defer stopServer(s)
	url := s.ClientURL()
	flags := []string{"-nats", url, "-jobs", "200", "-poison", "1", "-failing", "1", "-work", "0s", "-max-deliveries", "3"}

	ctx, stopWorkers := context.WithCancel(context.Background())
	outs := make([]*syncBuffer, 2)
	errs := make(chan error, len(outs))
	for i := range outs {
		outs[i] = &syncBuffer{}
		go func() { errs <- run(ctx, append([]string{"-role", "worker"}, flags...), outs[i], &syncBuffer{}) }()
	}
	var prod syncBuffer
	require.NoError(t, run(context.Background(), append([]string{"-role", "producer"}, flags...), &prod, &syncBuffer{}))
	assert.Equal(t, "published=200\n", prod.String())

	nc, js, err := connect(context.Background(), url)
	require.NoError(t, err)
	defer nc.Close()
	cons, err := js.Consumer(context.Background(), jobsStream, durableName)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream == 200
	}, 30*time.Second, 10*time.Millisecond)
	stopWorkers() // as Ctrl-C does: a graceful stop
	for range outs {
		require.NoError(t, <-errs)
	}

	total := 0
	for _, o := range outs {
		m := regexp.MustCompile(`worker: stopped processed=(\d+) acked=(\d+) .* in_flight=0\n`).FindStringSubmatch(o.String())
		require.NotNil(t, m, "worker output:\n%s", o.String())
		acked, _ := strconv.Atoi(m[2])
		total += acked
	}
	assert.GreaterOrEqual(t, total, 198, "every good job acked, by one worker or the other")
	results, err := distinctJobs(context.Background(), js, resultsStream, func(m *jetstream.RawStreamMsg) (int, error) {
		var r Result
		err := json.Unmarshal(m.Data, &r)
		return r.ID, err
	})
	require.NoError(t, err)
	assert.Equal(t, 198, results, "one result per good job")
}

func TestRun_ReportsAnUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := fmt.Sprintf("nats://%s", l.Addr())
	require.NoError(t, l.Close())

	for _, role := range []string{"producer", "worker"} {
		err := run(context.Background(), []string{"-role", role, "-nats", url}, &syncBuffer{}, &syncBuffer{})
		require.Error(t, err, role)
		assert.Contains(t, err.Error(), "cannot reach NATS server at "+url, role)
	}
}

func TestRun_RejectsBadArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "nothing to do"},
		{[]string{"-role", "chef"}, `unknown -role "chef"`},
		{[]string{"-demo", "-role", "worker"}, "not both"},
		{[]string{"-demo", "-jobs", "3", "-poison", "2", "-failing", "2"}, "must be >= 1 and hold"},
		{[]string{"-demo", "-workers", "0"}, "-workers 0"},
		{[]string{"-role", "server", "-listen", "0.0.0.0:4222"}, "loopback address only"},
		{[]string{"-demo", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), tt.args, &syncBuffer{}, &syncBuffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestRoleWorker_MetricsFlagServesThePipelineOnLoopback(t *testing.T) {
	s, err := startServer("127.0.0.1:0", t.TempDir())
	require.NoError(t, err)
	defer stopServer(s)
	flags := []string{"-nats", s.ClientURL(), "-jobs", "20", "-poison", "0", "-failing", "0", "-work", "0s"}
	require.NoError(t, run(context.Background(), append([]string{"-role", "producer"}, flags...), &syncBuffer{}, &syncBuffer{}))

	ctx, stop := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-role", "worker", "-metrics", ":0"}, flags...), &out, &syncBuffer{})
	}()
	urlRE := regexp.MustCompile(`worker: metrics on (http://127\.0\.0\.1:\d+/metrics)\n`)
	var body string
	require.Eventually(t, func() bool {
		m := urlRE.FindStringSubmatch(out.String())
		if m == nil {
			return false
		}
		resp, err := http.Get(m[1])
		if err != nil {
			return false
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = string(b)
		return err == nil && strings.Contains(body, `pipeline="jsworker"`) &&
			regexp.MustCompile(`pipeline_stage_items_in_total\{kind="[^"]+",pipeline="jsworker",stage="[^"]+"\} 20\n`).MatchString(body)
	}, 30*time.Second, 20*time.Millisecond, "the worker's metrics show its 20 jobs; last scrape:\n%s", body)
	stop()
	require.NoError(t, <-done)
}
