package pipeline_test

// The helpers every core test shares: one bound for "this must not take
// forever", item and stage-function stand-ins, stats lookups, channel and
// timing checks, the concurrency gauge, the randomness of the property, stop
// and chaos suites, and the table runners that several subjects' tests use.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hangBound is how long anything that should happen promptly (a call
// returning, a value arriving, a pipeline ending) may take before the test
// counts it as hung. It is a hang detector, not a speed requirement:
// generous, so that a loaded machine never fails a correct library.
const hangBound = 20 * time.Second

// ---- items and stage functions ----

// ints returns 0, 1, …, n-1.
func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// identity is a FanOut function that passes items on.
func identity(_ context.Context, v int) (int, error) { return v, nil }

// emitAsIs is a FlatMap function that passes items on.
func emitAsIs(_ context.Context, v int, emit func(int) error) error { return emit(v) }

// keepAll is a Filter predicate that keeps every item.
func keepAll(int) bool { return true }

// routeToFirst is a Partition route that sends every item to output 0.
func routeToFirst(int) int { return 0 }

// doNothing is a ForEach function that accepts every item.
func doNothing(context.Context, int) error { return nil }

// counter is an endless Produce source emitting 0, 1, 2, … until emit fails
// (cancel or Stop) and then returning emit's error; emitted (if not nil)
// counts the emits that succeeded.
func counter(p *pipeline.Pipeline, emitted *atomic.Int64, opts ...pipeline.StageOption) <-chan int {
	return pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
			if emitted != nil {
				emitted.Add(1)
			}
		}
	}, opts...)
}

// gated is a source that emits first, then waits for gate (or the end of
// its context), then emits then.
func gated(p *pipeline.Pipeline, gate <-chan struct{}, first, then []int) <-chan int {
	return pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		for _, v := range first {
			if err := emit(v); err != nil {
				return err
			}
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, v := range then {
			if err := emit(v); err != nil {
				return err
			}
		}
		return nil
	})
}

// three is a source of the items 1, 2 and 3.
func three(p *pipeline.Pipeline) <-chan int { return pipeline.Generate(p, 1, 2, 3) }

// Typed nils, for arguments that must not be nil.
var (
	nilPipeline *pipeline.Pipeline
	nilCtx      context.Context // a nil context, without a nil literal
	nilInts     <-chan int
	nilSlices   <-chan []int
	nilFn       func(context.Context, int) (int, error)
	nilFlat     func(context.Context, int, func(int) error) error
	nilEach     func(context.Context, int) error
	nilSeq      iter.Seq[int]
	nilProduce  func(context.Context, func(int) error) error
)

// Errors the suites inject.
var (
	errSkip     = errors.New("test: skipped item")
	errInjected = errors.New("test: injected failure")
	errCancel   = errors.New("test: parent cancelled")
)

// ---- stats ----

// stageStats returns the stats of the stage named name, which must be the
// only stage of that name.
func stageStats(t testing.TB, p *pipeline.Pipeline, name string) pipeline.StageStats {
	t.Helper()
	stats := p.Stats()
	var found []pipeline.StageStats
	for _, s := range stats {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		require.Failf(t, "no such stage", "stage %q not in %+v", name, stats)
	}
	require.Lenf(t, found, 1, "stages named %q in %+v", name, stats)
	return found[0]
}

// assertConserved checks, once the pipeline has ended, that nothing is
// busy, and In = Out + Dropped + Errors for every stage that passes each item
// on at most once.
func assertConserved(t testing.TB, stats []pipeline.StageStats) {
	t.Helper()
	for _, s := range stats {
		assert.Zerof(t, s.Busy, "stage %s (%s) is busy after the end: %+v", s.Name, s.Kind, s)
		if s.Kind == "flatmap" {
			continue
		}
		assert.Equalf(t, s.In, s.Out+s.Dropped+s.Errors, "stage %s (%s): In = Out + Dropped + Errors: %+v", s.Name, s.Kind, s)
	}
}

// ---- channels and time ----

// closedNow reports, without blocking, whether ch is closed and empty.
func closedNow[T any](ch <-chan T) bool {
	select {
	case _, ok := <-ch:
		return !ok
	default:
		return false
	}
}

// requireClosed asserts, without blocking, that ch is closed and empty.
func requireClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.False(t, ok, "received %v from a channel that should be closed", v)
	default:
		require.Fail(t, "channel is still open")
	}
}

// requireDone asserts that the pipeline's context is done.
func requireDone(t *testing.T, p *pipeline.Pipeline) {
	t.Helper()
	select {
	case <-p.Context().Done():
	default:
		require.Fail(t, "the pipeline's context is not done")
	}
}

// within runs fn and fails the test if it has not returned within hangBound.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(hangBound):
		require.FailNowf(t, "hung", "%s did not return within %v", what, hangBound)
	}
}

// await waits for ch to be closed (or to deliver), failing the test instead
// of hanging if that does not happen within hangBound.
func await[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangBound):
		require.FailNowf(t, "hung", "still waiting for %s after %v", what, hangBound)
	}
}

// recv receives one value from ch, failing the test if none comes within
// hangBound or ch is closed.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "channel closed")
		return v
	case <-time.After(hangBound):
		require.FailNow(t, "nothing received in time")
		var zero T
		return zero
	}
}

// waitErr runs p.Wait and fails the test if it does not return within
// hangBound.
func waitErr(t *testing.T, p *pipeline.Pipeline) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hangBound):
		require.FailNow(t, "Wait did not return in time")
		return nil
	}
}

// readAll reads every output concurrently to its end.
func readAll[T any](outs []<-chan T) [][]T {
	got := make([][]T, len(outs))
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range o {
				got[i] = append(got[i], v)
			}
		}()
	}
	wg.Wait()
	return got
}

// guard runs body on the test's goroutine and fails t if it panics, or
// leaves a goroutine behind once it has returned. If body does not return
// within hangBound, a watchdog prints every goroutine's stack and crashes
// the test binary: a hang is the one failure that cannot be reported any
// other way.
func guard(t testing.TB, body func()) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	name := t.Name()
	watchdog := time.AfterFunc(hangBound, func() {
		buf := make([]byte, 4<<20)
		fmt.Fprintf(os.Stderr, "%s did not return within %v\n%s\n", name, hangBound, buf[:runtime.Stack(buf, true)])
		panic(name + " hung")
	})
	defer watchdog.Stop() // also when body ends the test with t.FailNow
	func() {
		defer func() {
			if x := recover(); x != nil {
				t.Fatalf("panicked: %v\n%s", x, debug.Stack())
			}
		}()
		body()
	}()
	watchdog.Stop()
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left behind: %v", err)
	}
}

// ---- concurrency ----

// gauge measures how much is held at once (running calls, or slots of
// weight) and the most that ever was.
type gauge struct{ cur, peak atomic.Int64 }

// enter counts one call in and returns how many now run.
func (g *gauge) enter() int64 { return g.add(1) }

// leave counts one call out.
func (g *gauge) leave() { g.add(-1) }

// add changes the level by delta, records a new peak, and returns the level.
func (g *gauge) add(delta int64) int64 {
	n := g.cur.Add(delta)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

// reach is a stage function that counts itself in g and waits (or until
// its context ends) until g has once reached level, so that a test can prove
// that level is reached. Then it returns its item.
func reach(g *gauge, level int64, reached chan struct{}, once *sync.Once) func(context.Context, int) (int, error) {
	return func(ctx context.Context, v int) (int, error) {
		defer g.leave()
		if g.enter() >= level {
			once.Do(func() { close(reached) })
		}
		select {
		case <-reached:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		time.Sleep(50 * time.Microsecond) // overlap with the calls after us
		return v, nil
	}
}

// ---- randomness ----

// newRand returns a generator seeded from PIPELINE_SEED or the clock, and
// logs the seed so that a failure can be replayed.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PIPELINE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "PIPELINE_SEED must be an unsigned integer")
		seed = v
	}
	t.Logf("seed %d (replay with PIPELINE_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// hash mixes v with salt (splitmix64), for deterministic pseudo-random
// decisions about an item.
func hash(v, salt uint64) uint64 {
	z := v + salt + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// jitter yields the processor a random number of times (0 to 3), so that
// worker calls finish in a scrambled order without sleeping.
func jitter(v int) {
	for range hash(uint64(v), 0x51) % 4 {
		runtime.Gosched()
	}
}

// randomBuffer is a random output buffer option for a new pipeline:
// unbuffered, tiny or the default.
func randomBuffer(r *rand.Rand) []pipeline.Option {
	switch r.IntN(3) {
	case 0:
		return []pipeline.Option{pipeline.DefaultBuffer(0)}
	case 1:
		return []pipeline.Option{pipeline.DefaultBuffer(1 + r.IntN(4))}
	}
	return nil
}

// randomRoute is a Partition route that spans the whole int range, negative
// and huge values included.
func randomRoute(salt uint64) func(int) int {
	return func(v int) int {
		switch h := hash(uint64(v), salt); h % 8 {
		case 0:
			return math.MinInt
		case 1:
			return math.MaxInt
		default:
			return int(h)
		}
	}
}

// wrap is where Partition must send route value x among n outputs.
func wrap(x, n int) int { return ((x % n) + n) % n }

// ---- table runners shared by several subjects ----

// invalidCase is a call with a bad argument: it must fail the pipeline with
// an error wrapping ErrInvalidArgument whose message holds every string of
// want (the stage and the argument).
type invalidCase struct {
	name  string
	newP  func() *pipeline.Pipeline // nil: New(context.Background())
	build func(p *pipeline.Pipeline) built
	want  []string
}

// built is what an invalidCase built: stage outputs, or what a sink returned.
type built struct {
	outs  []<-chan int
	drain bool // outs must end promptly (else: be closed at once)
	err   error
	sink  bool
}

// closedAtOnce: the stage's outputs must be closed, and empty, at once.
func closedAtOnce(outs ...<-chan int) built { return built{outs: outs} }

// endsPromptly: the stage's output must be there and end promptly.
func endsPromptly(out <-chan int) built { return built{outs: []<-chan int{out}, drain: true} }

// sinkResult: the error a sink returned, which must be Wait's.
func sinkResult(err error) built { return built{err: err, sink: true} }

// onThree builds a stage on three(p); its output must end promptly.
func onThree(build flowBuild) func(*pipeline.Pipeline) built {
	return func(p *pipeline.Pipeline) built { return endsPromptly(build(p, three(p))) }
}

// runInvalid runs each case as a subtest.
func runInvalid(t *testing.T, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(context.Background())
			if tc.newP != nil {
				p = tc.newP()
			}
			res := tc.build(p)
			for _, o := range res.outs {
				if res.drain {
					require.NotNil(t, o, "the stage reported no error")
					sent := 0
					within(t, "reading the output", func() {
						for range o { // closed at once: this loop ends
							sent++
						}
					})
					assert.Zero(t, sent, "a stage with a bad argument sends nothing")
				} else {
					requireClosed(t, o)
				}
			}
			var err error
			within(t, "Wait", func() { err = p.Wait() })
			require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if res.sink {
				assert.Equal(t, err, res.err, "the sink and Wait report the same error")
			}
			assert.ErrorIs(t, context.Cause(p.Context()), pipeline.ErrInvalidArgument,
				"the pipeline's context is done with the failure")
		})
	}
}

// workersRun builds a stage with workers goroutines on in, each item going
// through call, and consumes it to the end.
type workersRun func(p *pipeline.Pipeline, in <-chan int, workers int, call func(context.Context)) error

// assertWorkersBound checks, for several worker counts, that run reaches
// exactly workers concurrent calls and never more.
func assertWorkersBound(t *testing.T, run workersRun) {
	t.Helper()
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			var peak gauge
			// The first calls wait until workers calls run together, so the
			// peak must reach workers exactly; it must never pass it.
			reached := make(chan struct{})
			var once sync.Once
			var stuck atomic.Bool
			call := func(ctx context.Context) {
				if peak.enter() == int64(workers) {
					once.Do(func() { close(reached) })
				}
				defer peak.leave()
				select {
				case <-reached:
				case <-time.After(hangBound):
					stuck.Store(true)
				}
				time.Sleep(rand.N(50 * time.Microsecond))
			}
			p := pipeline.New(context.Background())
			err := run(p, pipeline.Generate(p, ints(200)...), workers, call)
			require.NoError(t, err)
			assert.False(t, stuck.Load(), "never reached %d concurrent calls", workers)
			assert.Equal(t, int64(workers), peak.peak.Load())
		})
	}
}

// flowBuild builds a flow-control stage (or a stage with a flow-control
// option) on an int input.
type flowBuild func(p *pipeline.Pipeline, in <-chan int) <-chan int

// assertCancelEndsUnread: on an endless source with nobody reading its
// output, once the stage named stage has taken an item, a cancel ends the
// pipeline promptly and closes the output.
func assertCancelEndsUnread(t *testing.T, stage string, build flowBuild) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := pipeline.New(ctx)
	out := build(p, counter(p, nil))
	require.NotNil(t, out)
	require.Eventually(t, func() bool { return stageStats(t, p, stage).In > 0 },
		hangBound, time.Millisecond, "the stage never took an item")

	cancel()
	err := waitErr(t, p)
	assert.ErrorIs(t, err, context.Canceled)
	for range out { // closed, and whatever is left in it is finite
	}
}

// assertStopDeliversEmitted: on an endless source, a Stop after 50 items
// delivers every item the source emitted (less what a lossy stage dropped),
// in order if the stage keeps order.
func assertStopDeliversEmitted(t *testing.T, stage string, lossy, ordered bool, build flowBuild) {
	t.Helper()
	p := pipeline.New(context.Background())
	out := build(p, counter(p, nil))
	require.NotNil(t, out)
	var got []int
	for v := range pipeline.All(p, out) {
		got = append(got, v)
		if len(got) == 50 {
			p.Stop()
		}
	}
	require.NoError(t, p.Wait())

	emitted := p.Stats()[0].Out
	st := stageStats(t, p, stage)
	assert.Equal(t, emitted, st.In, "the stage took every emitted item")
	assert.Equal(t, st.In, st.Out+st.Dropped+st.Errors, "conservation")
	assert.Equal(t, st.Out, uint64(len(got)), "the sink got every item sent on")
	if !lossy {
		assert.Zero(t, st.Dropped)
		assert.Equal(t, emitted, uint64(len(got)), "Stop lost nothing")
	}
	if ordered {
		assert.True(t, sort.IntsAreSorted(got), "one-goroutine stages keep order")
	}
}
