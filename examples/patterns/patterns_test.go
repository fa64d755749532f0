package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sync/semaphore"
)

// exWant is what both versions of each pattern print (dropping's pipeline
// version is checked on its own: its counts vary by one or two).
var exWant = map[string]string{
	"worker-pool": "squares of 1..10 with 3 workers: [1 4 9 16 25 36 49 64 81 100]\n",
	"semaphore":   "doubled: [2 4 6 8 10 12 14 16 18 20 22 24]\nnever more than 3 at once\n",
	"weighted":    "loaded 8 files (31 MB in all) within 10 MB: err <nil>\nnever more than 10 at once\nan 11 MB file: fails at once\n",
	"fan-in":      "squares, merged from two workers: [1 4 9 16 25 36 49 64]\n",
	"stages":      "first 5 odd squares: [1 9 25 49 81]\nno goroutine left behind\n",
	"backpressure": "sent 50, consumed 50\n" +
		"the producer waited: never more than 6 items ahead\n",
	"dropping": "burst of 100 into a queue of 10: 10 delivered, 90 dropped\nevery item delivered or counted as dropped\n",
	"ticker":   "handled [1 2 3 4 5]\nat most one per 20ms: 5 items took at least 80ms\n",
	"shutdown": "shut down after the 20th job: at least 20 handled: true\nevery job handed out was handled: lost 0\n",
	"timeout":  "results [10 20 40 50 60 80]\ntimed out [3 7]\n",
	"caps": "resize: ran 12, never more than 3 at once\nupload: ran 12, never more than 3 at once\n" +
		"both kinds together: never more than 4 at once\n",
	"kill": "stopped on a bad reading\nsensors opened 3, closed 3\n",
	"keyed": "34 events of 4 accounts, each account's in order: true\n" +
		"bob, carol and dave all done before alice's first (30 ms) event: true\n",
}

var exWantErrgroup = map[string]string{
	"hand": "parse [\"1\" \"2\" \"3\" \"4\"]: [1 2 3 4], err <nil>\n" +
		"parse [\"1\" \"x\" \"3\" \"y\"]: 1 error(s): strconv.Atoi: parsing \"x\": invalid syntax\n",
	"pipe": "parse [\"1\" \"2\" \"3\" \"4\"]: [1 2 3 4], err <nil>\n" +
		"parse [\"1\" \"x\" \"3\" \"y\"]: kept [1 3], 2 error(s):\n" +
		"input \"x\": pipeline: stage parse: strconv.Atoi: parsing \"x\": invalid syntax\n" +
		"input \"y\": pipeline: stage parse: strconv.Atoi: parsing \"y\": invalid syntax\n",
}

func TestPatterns_BothVersionsPrintTheExpectedOutput(t *testing.T) {
	for _, p := range patterns {
		t.Run(p.Name, func(t *testing.T) {
			var hand, pipe bytes.Buffer
			require.NoError(t, p.Hand(&hand))
			require.NoError(t, p.Pipe(&pipe))
			switch p.Name {
			case "errgroup":
				assert.Equal(t, exWantErrgroup["hand"], hand.String())
				assert.Equal(t, exWantErrgroup["pipe"], pipe.String())
			case "dropping":
				assert.Equal(t, exWant[p.Name], hand.String())
				assert.Contains(t, pipe.String(), "every item delivered or counted as dropped\n")
			default:
				want, ok := exWant[p.Name]
				require.True(t, ok, "no expected output for %s", p.Name)
				assert.Equal(t, want, hand.String(), "hand-written")
				assert.Equal(t, want, pipe.String(), "pipeline")
			}
		})
	}
}

func TestPatterns_EachNamesAnExistingFileAndHasBothVersions(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range patterns {
		assert.False(t, seen[p.Name], "duplicate %s", p.Name)
		seen[p.Name] = true
		assert.FileExists(t, p.File)
		assert.NotEmpty(t, p.Title)
		assert.NotEmpty(t, p.Pitfall)
		assert.NotNil(t, p.Hand)
		assert.NotNil(t, p.Pipe)
	}
	assert.Len(t, patterns, 14)
}

func TestRun_ListNamesEveryPattern(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-list"}, &out, &bytes.Buffer{}))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, len(patterns))
	for i, p := range patterns {
		assert.True(t, strings.HasPrefix(lines[i], p.Name+" "), lines[i])
		assert.Contains(t, lines[i], p.Pitfall)
	}
}

func TestRun_NamedPatternPrintsBothVersions(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"worker-pool", "fan-in"}, &out, &bytes.Buffer{}))
	assert.Equal(t, "== worker-pool: Worker pool over a jobs channel (workerpool.go)\n"+
		"pitfall of the hand-written version: deadlock on an unread channel\n"+
		"-- hand-written\n"+exWant["worker-pool"]+"-- pipeline\n"+exWant["worker-pool"]+"\n"+
		"== fan-in: Fan-out, fan-in (fanin.go)\n"+
		"pitfall of the hand-written version: closing the merged channel too early or never\n"+
		"-- hand-written\n"+exWant["fan-in"]+"-- pipeline\n"+exWant["fan-in"], out.String())
}

func TestRun_RejectsUnknownOrMissingNames(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {}, {"worker-pool", "nope"}} {
		var out bytes.Buffer
		assert.Error(t, run(args, &out, &bytes.Buffer{}), "%q", args)
	}
}

// ---- the patterns one by one: the two versions agree on what matters ----

func TestWorkerPool_EveryJobSquaredWhateverTheWorkers(t *testing.T) {
	jobs := []int{3, 1, 4, 1, 5, 9, 2, 6}
	want := []int{1, 1, 4, 9, 16, 25, 36, 81}
	for _, workers := range []int{1, 2, 8, 20} {
		hand := workerPoolHand(jobs, workers)
		pipe, err := workerPoolPipe(jobs, workers)
		require.NoError(t, err)
		slices.Sort(hand)
		slices.Sort(pipe)
		assert.Equal(t, want, hand, "workers %d", workers)
		assert.Equal(t, want, pipe, "workers %d", workers)
	}
	assert.Empty(t, workerPoolHand(nil, 3))
	empty, err := workerPoolPipe(nil, 3)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestErrgroup_HandReturnsOneErrorPipelineReturnsEveryBadInput(t *testing.T) {
	inputs := []string{"1", "a", "2", "b", "3", "c"}
	_, err := errgroupHand(context.Background(), inputs, 3)
	require.Error(t, err)
	assert.Equal(t, 1, countErrs(err))

	out, err := errgroupPipe(context.Background(), inputs, 3)
	assert.Equal(t, []int{1, 2, 3}, out, "good inputs kept, in order")
	require.Equal(t, 3, countErrs(err))
	var items []any
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *pipeline.StageError
		require.ErrorAs(t, e, &se)
		assert.Equal(t, "parse", se.Stage)
		items = append(items, se.Item)
	}
	assert.ElementsMatch(t, []any{"a", "b", "c"}, items)
}

func TestErrgroup_BothKeepInputOrder(t *testing.T) {
	inputs := make([]string, 50)
	want := make([]int, 50)
	for i := range inputs {
		inputs[i], want[i] = fmt.Sprint(i*7), i*7
	}
	hand, err := errgroupHand(context.Background(), inputs, 4)
	require.NoError(t, err)
	pipe, err := errgroupPipe(context.Background(), inputs, 4)
	require.NoError(t, err)
	assert.Equal(t, want, hand)
	assert.Equal(t, want, pipe)
}

func TestSemaphore_NeverMoreThanTheLimitAtOnce(t *testing.T) {
	items := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, limit := range []int{1, 2, 5} {
		var gh, gp gauge
		hand := semaphoreHand(items, limit, semaphoreWork(&gh))
		pipe, err := semaphorePipe(items, limit, semaphoreWork(&gp))
		require.NoError(t, err)
		assert.Equal(t, []int{2, 4, 6, 8, 10, 12, 14, 16, 18, 20}, hand)
		assert.Equal(t, hand, pipe)
		assert.LessOrEqual(t, gh.Max(), limit)
		assert.LessOrEqual(t, gp.Max(), limit)
	}
}

func TestWeighted_NeverMoreThanTheBudgetInUse(t *testing.T) {
	for _, budget := range []int{7, 10, 20} {
		var mh, mp gauge
		require.NoError(t, weightedHand(context.Background(), weightedFiles, budget, weightedLoad(&mh)))
		require.NoError(t, weightedPipe(context.Background(), weightedFiles, budget, weightedLoad(&mp)))
		assert.LessOrEqual(t, mh.Max(), budget)
		assert.LessOrEqual(t, mp.Max(), budget)
	}
}

func TestWeighted_FileHeavierThanTheBudgetFailsAtOnce(t *testing.T) {
	err := weightedHand(context.Background(), weightedHuge, 10, weightedLoad(&gauge{}))
	assert.ErrorContains(t, err, "huge: 11 MB exceeds the 10 MB budget")
	err = weightedPipe(context.Background(), weightedHuge, 10, weightedLoad(&gauge{}))
	assert.ErrorIs(t, err, pipeline.ErrInvalidArgument)
}

// The pitfall the hand-written version guards against: x/sync's Acquire
// of more than the whole budget does not fail, it waits for the context.
func TestWeighted_PitfallAcquireBeyondTheBudgetWaitsForTheContext(t *testing.T) {
	sem := semaphore.NewWeighted(10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, sem.Acquire(ctx, 11), context.DeadlineExceeded)
}

func TestFanIn_EveryItemOnceFromBothWorkers(t *testing.T) {
	nums := make([]int, 100)
	want := make([]int, 100)
	for i := range nums {
		nums[i], want[i] = i, i*i
	}
	hand := fanInHand(context.Background(), nums)
	pipe, err := fanInPipe(context.Background(), nums)
	require.NoError(t, err)
	slices.Sort(hand)
	slices.Sort(pipe)
	assert.Equal(t, want, hand)
	assert.Equal(t, want, pipe)
}

func TestFanIn_CancelledContextEndsBothPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	nums := make([]int, 10000)
	assert.Less(t, len(fanInHand(ctx, nums)), len(nums))
	out, err := fanInPipe(ctx, nums)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, len(out), len(nums))
}

func TestStages_EarlyReturnLeavesNoGoroutine(t *testing.T) {
	for _, n := range []int{1, 3, 10} {
		want := make([]int, n)
		for i := range n {
			want[i] = (2*i + 1) * (2*i + 1)
		}
		assert.Equal(t, want, stagesHand(n))
		goleak.VerifyNone(t)
		pipe, err := stagesPipe(n)
		require.NoError(t, err)
		assert.Equal(t, want, pipe)
		goleak.VerifyNone(t)
	}
}

func TestBackpressure_ProducerStaysWithinTheQueueOfTheConsumer(t *testing.T) {
	items := make([]int, 30)
	for _, n := range []int{1, 3, 8} {
		var lh, lp lag
		backpressureHand(items, n, lh.onSent, lh.onConsume)
		require.NoError(t, backpressurePipe(items, n, lp.onSent, lp.onConsume))
		assert.Equal(t, 30, lh.consumed)
		assert.Equal(t, 30, lp.consumed)
		assert.LessOrEqual(t, lh.most, n+1, "hand, queue %d", n)
		assert.LessOrEqual(t, lp.most, n+2, "pipeline, queue %d", n) // Buffer's and ForEach's goroutines each hold one
	}
}

func TestDropping_EveryItemDeliveredOrCounted(t *testing.T) {
	burst := make([]int, 100)
	for _, n := range []int{1, 10, 50} {
		var hand, pipe int
		dropped := droppingHand(burst, n, func(int) { hand++ })
		assert.Equal(t, n, hand, "the consumer gets exactly the queue")
		assert.Equal(t, 100-n, dropped)

		dropped, err := droppingPipe(burst, n, func(int) { pipe++ })
		require.NoError(t, err)
		assert.Equal(t, 100, pipe+dropped)
		// the queue, the item the busy consumer holds, and the last item
		// if the consumer freed a place before the stage decided on it
		assert.GreaterOrEqual(t, pipe, n)
		assert.LessOrEqual(t, pipe, n+2)
	}
}

func TestTicker_HandlesInOrderAtTheRate(t *testing.T) {
	const every = 15 * time.Millisecond
	items := []int{1, 2, 3, 4, 5, 6}
	for name, run := range map[string]func(context.Context, []int, time.Duration, func(int)) error{
		"hand": tickerHand, "pipe": tickerPipe,
	} {
		var got []int
		start := time.Now()
		require.NoError(t, run(context.Background(), items, every, func(v int) { got = append(got, v) }))
		assert.Equal(t, items, got, name)
		assert.GreaterOrEqual(t, time.Since(start), 5*every, name)
	}
}

func TestTicker_CancelEndsTheWait(t *testing.T) {
	items := make([]int, 100)
	for name, run := range map[string]func(context.Context, []int, time.Duration, func(int)) error{
		"hand": tickerHand, "pipe": tickerPipe,
	} {
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(20*time.Millisecond, cancel) // long before the next tick
		handled := 0
		err := run(ctx, items, time.Hour, func(int) { handled++ })
		assert.ErrorIs(t, err, context.Canceled, name)
		assert.LessOrEqual(t, handled, 1, name)
		timer.Stop()
		cancel()
	}
}

func TestShutdown_EveryJobHandedOutIsHandled(t *testing.T) {
	for _, workers := range []int{1, 4} {
		for name, run := range map[string]func(context.Context, int, func(int)) (int, error){
			"hand": func(q context.Context, w int, h func(int)) (int, error) { return shutdownHand(q, w, h), nil },
			"pipe": shutdownPipe,
		} {
			quit, shutdown := context.WithCancel(context.Background())
			var handled atomic.Int64
			emitted, err := run(quit, workers, func(int) {
				if handled.Add(1) == 50 {
					shutdown()
				}
				time.Sleep(100 * time.Microsecond)
			})
			shutdown()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, handled.Load(), int64(50), name)
			assert.Equal(t, int64(emitted), handled.Load(), "%s, %d workers: handed out = handled", name, workers)
		}
	}
}

func TestTimeout_HungJobsReportedOthersReturned(t *testing.T) {
	jobs := []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	for name, run := range map[string]func(context.Context, []int, time.Duration, func(context.Context, int) (int, error)) ([]int, []int, error){
		"hand": timeoutHand, "pipe": timeoutPipe,
	} {
		results, timedOut, err := run(context.Background(), jobs, 50*time.Millisecond, timeoutWork)
		require.NoError(t, err, name)
		assert.Equal(t, []int{10, 20, 40, 50, 60, 80, 90}, results, name)
		assert.Equal(t, []int{3, 7}, timedOut, name)
	}
}

func TestTimeout_OtherErrorsStillFail(t *testing.T) {
	boom := errors.New("boom")
	work := func(_ context.Context, j int) (int, error) {
		if j == 2 {
			return 0, boom
		}
		return j, nil
	}
	for name, run := range map[string]func(context.Context, []int, time.Duration, func(context.Context, int) (int, error)) ([]int, []int, error){
		"hand": timeoutHand, "pipe": timeoutPipe,
	} {
		_, _, err := run(context.Background(), []int{1, 2, 3}, time.Second, work)
		assert.ErrorIs(t, err, boom, name)
	}
}

func TestCaps_KindCapAndPoolBothHold(t *testing.T) {
	var tasks []task
	for i := range 20 {
		tasks = append(tasks, task{"resize", i}, task{"upload", i}, task{"upload", 100 + i})
	}
	for _, c := range []struct{ pool, cap int }{{4, 3}, {2, 2}, {5, 1}} {
		for name, run := range map[string]func([]task, int, int, func(task)) error{
			"hand": func(ts []task, p, c int, r func(task)) error { capsHand(ts, p, c, r); return nil },
			"pipe": capsPipe,
		} {
			m := newCapsMeter()
			require.NoError(t, run(tasks, c.pool, c.cap, m.run))
			assert.Equal(t, map[string]int{"resize": 20, "upload": 40}, m.ran, name)
			assert.LessOrEqual(t, m.all.Max(), c.pool, "%s pool %d", name, c.pool)
			for k, g := range m.byKind {
				assert.LessOrEqual(t, g.Max(), c.cap, "%s %s cap %d", name, k, c.cap)
			}
		}
	}
}

func TestKill_EveryWorkerClosesItsSensorOnTheErrorPath(t *testing.T) {
	for _, workers := range []int{1, 2, 5} {
		for name, run := range map[string]func(int, func(int) *sensor) error{"hand": killHand, "pipe": killPipe} {
			var f fleet
			err := run(workers, f.open)
			require.ErrorIs(t, err, errBadReading, name)
			assert.Equal(t, int32(workers), f.opened.Load(), name)
			assert.Equal(t, int32(workers), f.closed.Load(), "%s, %d workers", name, workers)
		}
	}
}
