package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDownstream_SlowsBeyondItsCapacityAndFailsBeyondTwice(t *testing.T) {
	const base = 50 * time.Millisecond
	rec := newRecorder(time.Now(), time.Hour, 1)
	d := newDownstream(base, 2, rec)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.call(context.Background())
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, errOverload)
			failed++
		}
	}
	assert.Equal(t, 1, failed, "the fifth call in flight is beyond 2C")
	res := rec.results()
	require.Len(t, res, 1)
	assert.Equal(t, 4/3600.0, res[0].Throughput, "4 successes in an hour")
	// The calls that found 3 and 4 in flight took 1.5 and 2 × base.
	assert.GreaterOrEqual(t, res[0].P99, 2*base)
	assert.Less(t, res[0].P99, 2*base+flowSlack)
}

// flowSlack is how late a timer may fire on a loaded machine.
const flowSlack = 500 * time.Millisecond

func TestLimitTrace_ConvergedIsWhenTheAverageEntersTheBandForGood(t *testing.T) {
	tr := limitTrace{every: 10 * time.Millisecond,
		samples: []int{ /* phase 1, C=10 */ 1, 2, 10, 10, 20, 10, 10, 10, 10, 10 /* phase 2, C=2 */, 10, 2, 2, 2, 2, 2, 2, 2, 2, 9}}
	phase := 100 * time.Millisecond
	// No smoothing: phase 1 is in [9, 15] from its 6th sample (at 50 ms) on.
	assert.Equal(t, 50*time.Millisecond, tr.converged(0, phase, 10, 0.9, 1.5, 0))
	// Phase 2 ends outside [1.8, 3]: never.
	assert.Equal(t, time.Duration(-1), tr.converged(1, phase, 2, 0.9, 1.5, 0))
	// Averaged over 30 ms, it stays in [5, 15] from the 4th sample on: the
	// 20 is smoothed out, the 1 and 2 are not.
	assert.Equal(t, 30*time.Millisecond, tr.converged(0, phase, 10, 0.5, 1.5, 30*time.Millisecond))
	assert.InDelta(t, 9.3, tr.mean(0, phase), 1e-9)
}

func TestBest_IsTheLowestP99AmongTheFixedLimitsNearTheTopThroughput(t *testing.T) {
	r := func(name string, adaptive bool, thr float64, p99 time.Duration) *result {
		return &result{name: name, adaptive: adaptive, rounds: [][]phaseResult{{{Throughput: thr, P99: p99}}}}
	}
	res := []*result{
		r("fixed 4", false, 500, 5*time.Millisecond),
		r("fixed 8", false, 980, 6*time.Millisecond),
		r("fixed 16", false, 1000, 9*time.Millisecond),
		r("adaptive", true, 2000, time.Millisecond),
	}
	assert.Equal(t, 1, best(res, 0, 0))
	f := phaseFigures(res, 3, 0)
	assert.Equal(t, "fixed 8", f.bestName)
	assert.InDelta(t, 2000/980.0, f.thrRatio, 1e-9)
	assert.InDelta(t, 1/6.0, f.p99Rat, 1e-9)
}

func TestRun_ReportsEveryContenderInEveryPhase(t *testing.T) {
	cfg, err := parseFlags([]string{"-base", "2ms", "-phase", "300ms", "-caps", "4,2", "-fixed", "2,4",
		"-workers", "8", "-initial", "2", "-rounds", "1"})
	require.NoError(t, err)
	res, err := run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res, 6)
	for _, r := range res {
		require.Len(t, r.rounds, 1, r.name)
		require.Len(t, r.rounds[0], 2, r.name)
		assert.Positive(t, r.rounds[0][0].Throughput, r.name)
		assert.Positive(t, r.rounds[0][0].MeanLimit, r.name)
	}
	var out bytes.Buffer
	report(&out, cfg, res)
	for _, want := range []string{"phase 1: C = 4", "phase 2: C = 2", "| fixed 2 |", "| pipeline AIMD |",
		"| pipeline Vegas |", "| failsafe-go defaults |", "| failsafe-go tuned |", "best fixed limit: fixed",
		"- pipeline Vegas: C=4: throughput ", "fixed limits meeting the throughput and p99 targets in every phase: "} {
		assert.Contains(t, out.String(), want)
	}
}

func TestMedian_OfTwoNeversIsNever(t *testing.T) {
	never := time.Duration(math.MaxInt64)
	assert.Equal(t, never-1, median([]time.Duration{never, never}))
	assert.Equal(t, 2*time.Second, median([]time.Duration{time.Second, 3 * time.Second}))
	assert.Equal(t, "never", dur(median([]time.Duration{time.Second, never, never})))
	assert.Equal(t, "never", dur(median([]time.Duration{time.Second, 2 * time.Second, never, never})))
	assert.Equal(t, "1.50s", dur(median([]time.Duration{time.Second, 2 * time.Second})))
}

func TestSaveLoad_ReportsTheSameFigures(t *testing.T) {
	cfg := config{base: 10 * time.Millisecond, phase: time.Second, caps: []int{4}, workers: 8, initial: 2, rounds: 1}
	res := []*result{
		{name: "fixed 4", rounds: [][]phaseResult{{{Throughput: 400, P99: 11 * time.Millisecond, MeanLimit: 4}}}},
		{name: "pipeline Vegas", adaptive: true, rounds: [][]phaseResult{{{Throughput: 390, P99: 12 * time.Millisecond, MeanLimit: 4.5, Converged: 300 * time.Millisecond}}}},
	}
	path := filepath.Join(t.TempDir(), "raw.json")
	require.NoError(t, save(path, cfg, res))
	cfg2, res2, err := load(path)
	require.NoError(t, err)
	var a, b bytes.Buffer
	report(&a, cfg, res)
	report(&b, cfg2, res2)
	assert.Equal(t, a.String(), b.String())
	assert.Contains(t, a.String(), "- pipeline Vegas: C=4: throughput met, p99 met, converged met")
}

func TestParseFlags_RejectsBadLists(t *testing.T) {
	_, err := parseFlags([]string{"-caps", "16,x"})
	require.Error(t, err)
	_, err = parseFlags([]string{"-fixed", "0"})
	require.Error(t, err)
	_, err = parseFlags([]string{"-rounds", "0"})
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
}
