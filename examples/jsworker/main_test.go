package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline/examples/internal/syncbuf"
)

// TestMain fails the package if any test leaves a goroutine behind. Run as
// one of the worker processes that -demo and -scale start from their own
// executable (the test binary, in these tests), it is jsworker instead.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

var (
	summary = regexp.MustCompile(`(?m)^published=(\d+) processed=(\d+) acked=(\d+) redelivered=(\d+) lost=(\d+) dead=(\d+) twice=(\d+) bound=(\d+)\n\z`)
	killed  = regexp.MustCompile(`(?m)^killed worker 1 \(SIGKILL\) after it processed (\d+) jobs; it last reported (\d+) un-acked messages, and can hold at most (\d+)$`)
)

func TestDemo_LosesNoJobWhenAWorkerProcessIsKilled(t *testing.T) {
	// A flaky job (every 100th) fails once in each of the 3 worker
	// processes that meets it, and the killed worker may take one delivery
	// without settling it: 5 deliveries let it succeed in the worst case
	// (with 4, one in about 20 runs dead-lettered a flaky job).
	const jobs, poison, failing = 600, 2, 3
	var out, errOut syncbuf.Buffer
	err := run(context.Background(), []string{"-demo", "-jobs", strconv.Itoa(jobs), "-poison", strconv.Itoa(poison),
		"-failing", strconv.Itoa(failing), "-work", "5ms", "-ack-wait", "1s", "-max-deliveries", "5"}, &out, &errOut)
	require.NoError(t, err, "output:\n%s%s", out.String(), errOut.String())

	m := summary.FindStringSubmatch(out.String())
	require.NotNil(t, m, "the output must end with the summary line:\n%s", out.String())
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	published, processed, acked, redelivered, lost, dead, twice, bound := n(1), n(2), n(3), n(4), n(5), n(6), n(7), n(8)
	assert.Equal(t, jobs, published)
	assert.Equal(t, jobs, acked, "the server has every job settled")
	assert.Zero(t, lost, "every job has a result or a dead letter")
	assert.Equal(t, poison+failing, dead, "the poison and the always-failing jobs")
	assert.Equal(t, jobs-dead, processed-twice, "every good job processed at least once")
	assert.LessOrEqual(t, twice, bound, "jobs processed twice: at most what the killed worker held un-acked")
	assert.Equal(t, unackedBound(Config{Workers: 4}), bound)
	assert.Positive(t, redelivered, "the killed worker's jobs came back to the others")

	k := killed.FindStringSubmatch(out.String())
	require.NotNil(t, k, "output:\n%s", out.String())
	victimProcessed, _ := strconv.Atoi(k[1])
	held, _ := strconv.Atoi(k[2])
	assert.Positive(t, victimProcessed, "the killed worker had processed jobs")
	assert.Positive(t, held, "the killed worker held un-acked messages when it died")
	assert.Contains(t, out.String(), "worker 1: processed="+k[1]+", then killed")
	assert.Equal(t, 2, strings.Count(out.String(), "stopped processed="), "the other two stopped gracefully")
	t.Logf("killed worker: processed %d, held %d un-acked; jobs processed twice: %d (bound %d); redelivered to the others: %d",
		victimProcessed, held, twice, bound, redelivered)
}

func TestWorkerRole_ReportsEveryJobAndStopsWhenStdinEnds(t *testing.T) {
	s, err := startServer("127.0.0.1:0", t.TempDir())
	require.NoError(t, err)
	defer stopServer(s)
	flags := []string{"-nats", s.ClientURL(), "-jobs", "50", "-poison", "0", "-failing", "0", "-flaky", "0", "-work", "0s"}
	require.NoError(t, run(context.Background(), append([]string{"-role", "producer"}, flags...), &syncbuf.Buffer{}, &syncbuf.Buffer{}))

	stdinR, stdinW := io.Pipe()
	var out syncbuf.Buffer
	cfg := Config{Jobs: 50, Workers: 4, AckWait: 2 * time.Second, MaxDeliveries: 4}
	res := make(chan error, 1)
	go func() { res <- runWorkerRole(context.Background(), s.ClientURL(), cfg, &out, true, stdinR) }()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "done ") == 50 }, 30*time.Second, time.Millisecond,
		"output:\n%s", out.String())
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "status processed=50 ") }, 10*time.Second, time.Millisecond)
	require.NoError(t, stdinW.Close())
	require.NoError(t, <-res)

	seen := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if id, ok := strings.CutPrefix(line, "done "); ok {
			seen[id] = true
		}
	}
	assert.Len(t, seen, 50, "one done line per job")
	assert.Regexp(t, `(?m)^worker: stopped processed=50 acked=50 redelivered=0 dead=0 released=0 in_flight=0$`, out.String())
}

func TestScale_MeasuresEachNumberOfProcesses(t *testing.T) {
	var out, errOut syncbuf.Buffer
	err := run(context.Background(), []string{"-scale", "-jobs", "300", "-procs", "1,2", "-rounds", "2", "-work", "1ms"}, &out, &errOut)
	require.NoError(t, err, "output:\n%s%s", out.String(), errOut.String())

	assert.Contains(t, out.String(), "scale: 300 jobs, each waiting 1ms, 8 in flight per process (ideal: 8000 jobs/s per process), 2 round(s)\n")
	assert.Regexp(t, `(?m)^scale: round 1: 1 proc \d+ jobs/s \(1\.00x\); 2 proc \d+ jobs/s \(\d+\.\d\dx\);$`, out.String())
	assert.Regexp(t, `(?m)^scale: round 2: 1 proc \d+ jobs/s \(1\.00x\); 2 proc \d+ jobs/s \(\d+\.\d\dx\);$`, out.String())
	assert.Regexp(t, `(?m)^scale: 1 process\(es\): \d+ jobs/s, \d+% of the ideal, 1\.00x of 1 process\(es\); end to end \d+\.\d\ds$`, out.String())
	assert.Regexp(t, `(?m)^scale: 2 process\(es\): \d+ jobs/s, \d+% of the ideal, \d+\.\d\dx of 1 process\(es\); end to end \d+\.\d\ds$`, out.String())
}

func TestRoles_WorkersShareTheJobsAProducerPublished(t *testing.T) {
	s, err := startServer("127.0.0.1:0", t.TempDir())
	require.NoError(t, err)
	defer stopServer(s)
	url := s.ClientURL()
	flags := []string{"-nats", url, "-jobs", "200", "-poison", "1", "-failing", "1", "-work", "0s", "-max-deliveries", "3"}

	ctx, stopWorkers := context.WithCancel(context.Background())
	outs := make([]*syncbuf.Buffer, 2)
	errs := make(chan error, len(outs))
	for i := range outs {
		outs[i] = &syncbuf.Buffer{}
		go func() { errs <- run(ctx, append([]string{"-role", "worker"}, flags...), outs[i], &syncbuf.Buffer{}) }()
	}
	var prod syncbuf.Buffer
	require.NoError(t, run(context.Background(), append([]string{"-role", "producer"}, flags...), &prod, &syncbuf.Buffer{}))
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
		err := run(context.Background(), []string{"-role", role, "-nats", url}, &syncbuf.Buffer{}, &syncbuf.Buffer{})
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
		{[]string{"-demo", "-role", "worker"}, "give one of -demo, -scale and -role"},
		{[]string{"-demo", "-jobs", "3", "-poison", "2", "-failing", "2"}, "must be >= 1 and hold"},
		{[]string{"-demo", "-workers", "0"}, "-workers 0"},
		{[]string{"-role", "server", "-listen", "0.0.0.0:4222"}, "loopback address only"},
		{[]string{"-demo", "extra"}, "unexpected arguments"},
		{[]string{"-demo", "-scale"}, "give one of -demo, -scale and -role"},
		{[]string{"-scale", "-role", "worker"}, "give one of -demo, -scale and -role"},
		{[]string{"-scale", "-procs", "1,x"}, `-procs "1,x"`},
		{[]string{"-scale", "-procs", "0"}, `-procs "0"`},
		{[]string{"-scale", "-rounds", "0"}, "-rounds 0"},
		{[]string{"-demo", "-flaky", "-1"}, "-flaky -1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), tt.args, &syncbuf.Buffer{}, &syncbuf.Buffer{})
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
	require.NoError(t, run(context.Background(), append([]string{"-role", "producer"}, flags...), &syncbuf.Buffer{}, &syncbuf.Buffer{}))

	ctx, stop := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-role", "worker", "-metrics", ":0"}, flags...), &out, &syncbuf.Buffer{})
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

var traced = regexp.MustCompile(`(?m)^traced=(\d+) continued=(\d+) worker_spans=(\d+)$`)

func TestTrace_EveryJobsTraceGoesOnInTheWorkerProcess(t *testing.T) {
	const jobs = 5
	var out, errOut syncbuf.Buffer
	err := run(context.Background(), []string{"-trace", "-jobs", strconv.Itoa(jobs)}, &out, &errOut)
	require.NoError(t, err, "output:\n%s%s", out.String(), errOut.String())

	m := traced.FindStringSubmatch(out.String())
	require.NotNil(t, m, "output:\n%s", out.String())
	assert.Equal(t, []string{strconv.Itoa(jobs), strconv.Itoa(jobs)}, m[1:3], "every job's trace continued in the worker")
	assert.Equal(t, strconv.Itoa(4*jobs), m[3], "map, publish, send and confirm spans for every job")

	// The worker's spans of one job share the producer's trace: the map span
	// is the remote child of the producer's span, the publish span its child.
	produced := map[string]string{} // trace → producer span
	var worker []spanLine
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "producer: "); ok {
			s, ok := parseSpan(rest)
			require.True(t, ok, line)
			produced[s.trace] = s.span
		}
		if rest, ok := strings.CutPrefix(line, "worker 1: "); ok {
			s, ok := parseSpan(rest)
			require.True(t, ok, line)
			worker = append(worker, s)
		}
	}
	require.Len(t, produced, jobs)
	maps := map[string]string{} // map span → trace
	for _, s := range worker {
		require.Contains(t, produced, s.trace, "worker span %s in a trace the producer started", s.name)
		if s.name == "natsjs.map" {
			assert.Equal(t, produced[s.trace], s.parent)
			assert.True(t, s.remote)
			maps[s.span] = s.trace
		}
	}
	for _, s := range worker {
		if s.name == "natsjs.publish" {
			assert.Equal(t, s.trace, maps[s.parent], "the publish span is a child of its job's map span")
		}
	}
}

func TestRun_RejectsTraceWithDemoOrScale(t *testing.T) {
	for _, mode := range []string{"-demo", "-scale"} {
		var out, errOut syncbuf.Buffer
		err := run(context.Background(), []string{"-trace", mode}, &out, &errOut)
		assert.ErrorContains(t, err, "-trace goes alone", mode)
	}
}
