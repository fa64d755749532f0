package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// twoRounds is what two rounds of the suite print, cut down to the lines the
// report reads, plus noise lines it must skip.
const twoRounds = `goos: linux
BenchmarkW1/impl=handctx-2   	 2	 700000000 ns/op	 21.09 B/item	 0.0001 allocs/item	 700.0 ns/item
BenchmarkW1/impl=pipeline-2  	 6	 200000000 ns/op	 21.09 B/item	 0.0002 allocs/item	 200.0 ns/item
BenchmarkW3/impl=pipeline-2  	 45	 25000000 ns/op	 0.80 efficiency	 12500 ns/item
BenchmarkW3/impl=floor-2     	 50	 23000000 ns/op	 0.85 efficiency	 11500 ns/item
BenchmarkW4/impl=conc/workers=1-2     	 1	 1 ns/op	 80000 ns/item
BenchmarkW4/impl=conc/workers=2-2     	 1	 1 ns/op	 40000 ns/item
BenchmarkW4/impl=pipeline/workers=1-2 	 1	 1 ns/op	 80000 ns/item
BenchmarkW4/impl=pipeline/workers=2-2 	 1	 1 ns/op	 50000 ns/item
BenchmarkW4/impl=floor/workers=1-2    	 1	 1 ns/op	 60000 ns/item
BenchmarkW4/impl=floor/workers=2-2    	 1	 1 ns/op	 30000 ns/item
PASS
BenchmarkW1/impl=handctx-2   	 2	 600000000 ns/op	 21.09 B/item	 0.0001 allocs/item	 600.0 ns/item
BenchmarkW1/impl=pipeline-2  	 6	 300000000 ns/op	 21.09 B/item	 0.0002 allocs/item	 300.0 ns/item
W6 impl=none n=0 maxrss_kb=2000
W6 impl=pipeline n=1000000 maxrss_kb=2400
W6 impl=pipeline n=5000000 maxrss_kb=2500
`

func parse(t *testing.T, s string) *results {
	t.Helper()
	res := &results{bench: map[string]map[string][]float64{}, rss: map[string]map[int][]float64{}}
	require.NoError(t, res.read(strings.NewReader(s)))
	return res
}

func rowFor(t *testing.T, res *results, workload, measure string) row {
	t.Helper()
	for _, r := range res.rows() {
		if r.workload == workload && strings.HasPrefix(r.measure, measure) {
			return r
		}
	}
	t.Fatalf("no row %s %s", workload, measure)
	return row{}
}

func TestRead_KeepsEveryRoundPerBenchmarkAndUnit(t *testing.T) {
	res := parse(t, twoRounds)
	assert.Equal(t, []float64{700, 600}, res.bench["W1/impl=handctx"]["ns/item"])
	assert.Equal(t, []float64{0.0002, 0.0002}, res.bench["W1/impl=pipeline"]["allocs/item"])
	assert.Equal(t, []float64{2500}, res.rss["pipeline"][5_000_000])
}

func TestRead_RejectsAMalformedValue(t *testing.T) {
	res := &results{bench: map[string]map[string][]float64{}, rss: map[string]map[int][]float64{}}
	err := res.read(strings.NewReader("BenchmarkW1/impl=x-2 1 abc ns/op\n"))
	assert.ErrorContains(t, err, "line 1")
}

func TestRows_RatioIsTheMedianOfPerRoundRatios(t *testing.T) {
	r := rowFor(t, parse(t, twoRounds), "W1", "time/item")
	// Rounds: 200/700 and 300/600.
	assert.InDelta(t, (200.0/700+300.0/600)/2, r.got.med, 1e-9)
	assert.InDelta(t, 200.0/700, r.got.min, 1e-9)
	assert.InDelta(t, 0.5, r.got.max, 1e-9)
	assert.True(t, r.ok)
}

func TestRows_JudgesEachTarget(t *testing.T) {
	res := parse(t, twoRounds)
	cases := []struct {
		workload, measure string
		want              float64
		ok                bool
	}{
		{"W1", "allocs/item", 0.0002, true},
		{"W3", "efficiency", 0.80 / 0.85, false},
		{"W4", "speedup", (80000.0 / 50000) / (80000.0 / 40000), false},
		{"W6", "peak RSS at 5M", 500, true},
		{"W6", "peak RSS 5M minus 1M", 100, true},
	}
	for _, tc := range cases {
		t.Run(tc.workload+" "+tc.measure, func(t *testing.T) {
			r := rowFor(t, res, tc.workload, tc.measure)
			assert.InDelta(t, tc.want, r.got.med, 1e-9)
			assert.Equal(t, tc.ok, r.ok)
		})
	}
}

func TestRows_W4IsInconclusiveWhenTheFloorDidNotSpeedUp(t *testing.T) {
	busy := strings.Replace(twoRounds, "impl=floor/workers=2-2    	 1	 1 ns/op	 30000", "impl=floor/workers=2-2    	 1	 1 ns/op	 55000", 1)
	r := rowFor(t, parse(t, busy), "W4", "speedup")
	assert.Contains(t, r.inconclusive, "floor's own speedup is 1.09×")

	r = rowFor(t, parse(t, twoRounds), "W4", "speedup")
	assert.Empty(t, r.inconclusive)
}

func TestRows_W4AgainstTheSerialLoopComparesTwoWorkerTimes(t *testing.T) {
	r := rowFor(t, parse(t, twoRounds), "W4", "speedup over the serial loop")
	// floor on 1 worker 60000; on 2 workers: conc 40000, pipeline 50000.
	assert.InDelta(t, (60000.0/50000)/(60000.0/40000), r.got.med, 1e-9)
	assert.False(t, r.ok)
	assert.Empty(t, r.inconclusive)

	fast := strings.Replace(twoRounds, "impl=pipeline/workers=2-2 	 1	 1 ns/op	 50000", "impl=pipeline/workers=2-2 	 1	 1 ns/op	 41000", 1)
	r = rowFor(t, parse(t, fast), "W4", "speedup over the serial loop")
	assert.InDelta(t, 40000.0/41000, r.got.med, 1e-9)
	assert.True(t, r.ok)
}

func TestRows_W4OwnSpeedupAboveTheWorkerCountIsNotMeaningful(t *testing.T) {
	// conc on 1 worker 90000, on 2 workers 40000: 2.25×, beyond 2 workers.
	slow := strings.Replace(twoRounds, "impl=conc/workers=1-2     	 1	 1 ns/op	 80000", "impl=conc/workers=1-2     	 1	 1 ns/op	 90000", 1)
	r := rowFor(t, parse(t, slow), "W4", "speedup 1→2")
	assert.Contains(t, r.inconclusive, "not meaningful: the best contender's own speedup is 2.25×")
	abs := rowFor(t, parse(t, slow), "W4", "speedup over the serial loop")
	assert.Empty(t, abs.inconclusive, "the serial-loop row does not depend on 1-worker times")
}

func TestSplitImpl_SeparatesWorkloadAndContender(t *testing.T) {
	cases := []struct{ name, workload, impl string }{
		{"W1/impl=pipeline", "W1", "pipeline"},
		{"W4/impl=conc/workers=2", "W4/workers=2", "conc"},
		{"W2/order=ordered/impl=handctx", "W2/order=ordered", "handctx"},
		{"Other", "Other", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wl, impl := splitImpl(tc.name)
			assert.Equal(t, tc.workload, wl)
			assert.Equal(t, tc.impl, impl)
		})
	}
}

func TestReport_TabulatesMediansPerWorkloadAndContender(t *testing.T) {
	var buf bytes.Buffer
	report(&buf, parse(t, twoRounds))
	assert.Contains(t, buf.String(), "| ns/item | handctx | pipeline | floor | conc |\n|---|---|---|---|---|\n")
	assert.Contains(t, buf.String(), "| W1 | 650 (600–700) | 250 (200–300) | – | – |\n")
	assert.Contains(t, buf.String(), "| W4/workers=2 | – | 50000 (50000–50000) | 30000 (30000–30000) | 40000 (40000–40000) |\n")
	assert.Contains(t, buf.String(), "| allocs/item | handctx | pipeline |\n|---|---|---|\n| W1 | 0.0001 | 0.0002 |\n")
}

func TestReport_SaysWhenAWorkloadHasNoData(t *testing.T) {
	var buf bytes.Buffer
	report(&buf, parse(t, twoRounds))
	assert.Contains(t, buf.String(), "| W2 ordered | time/item vs handctx ordered | ≤ 0.40× | – | no data | – |")
	assert.Contains(t, buf.String(), "| W1 | time/item vs handctx | ≤ 0.70× | 0.393× | 0.286–0.5 (2) | yes |")
}

// issue14Round is one round of the issue 14 workloads, cut down.
const issue14Round = `BenchmarkLatency/producer=busy/impl=handctx-2     	 10	 40000000 ns/op	 30000 p50-ns	 60000 p99-ns	 20000 ns/item
BenchmarkLatency/producer=busy/impl=pipeline-2    	 10	 40000000 ns/op	 3000 p50-ns	 90000 p99-ns	 20000 ns/item
BenchmarkSmall/order=unordered/impl=handctx-2     	 1000	 16000 ns/op	 1000 B/pipeline	 15.00 allocs/pipeline	 16000 ns/pipeline
BenchmarkSmall/order=unordered/impl=pipeline-2    	 1000	 12000 ns/op	 6300 B/pipeline	 24.00 allocs/pipeline	 12000 ns/pipeline
BenchmarkWide/impl=pipeline-2 	 20	 33000000 ns/op	 0.60 efficiency	 1650 ns/item
BenchmarkWide/impl=floor-2    	 20	 36000000 ns/op	 0.55 efficiency	 1800 ns/item
`

func TestRows_Issue14Targets(t *testing.T) {
	res := parse(t, issue14Round)
	cases := []struct {
		workload, measure string
		want              float64
		ok                bool
	}{
		{"Latency busy", "p50", 0.1, true},
		{"Latency busy", "p99", 1.5, false},
		{"Small unordered", "allocs/pipeline", 24, true},
		{"Small unordered", "B/pipeline", 6300, false},
		{"Small unordered", "time/pipeline", 0.75, false},
		{"Wide", "efficiency", 0.60 / 0.55, true},
	}
	for _, tc := range cases {
		t.Run(tc.workload+" "+tc.measure, func(t *testing.T) {
			r := rowFor(t, res, tc.workload, tc.measure)
			assert.InDelta(t, tc.want, r.got.med, 1e-9)
			assert.Equal(t, tc.ok, r.ok)
		})
	}
	assert.True(t, rowFor(t, res, "Latency sleeping", "p50").missing)
}

func TestReport_TabulatesLatencyPercentilesAndSmallPipelines(t *testing.T) {
	var buf bytes.Buffer
	report(&buf, parse(t, issue14Round))
	assert.Contains(t, buf.String(), "| p50-ns | handctx | pipeline |\n|---|---|---|\n| Latency/producer=busy | 30000 (30000–30000) | 3000 (3000–3000) |\n")
	assert.Contains(t, buf.String(), "| p99-ns | handctx | pipeline |\n")
	assert.Contains(t, buf.String(), "| B/pipeline | handctx | pipeline |\n|---|---|---|\n| Small/order=unordered | 1000 (1000–1000) | 6300 (6300–6300) |\n")
	assert.NotContains(t, parseReport(t, twoRounds), "p50-ns", "no latency table without latency results")
}

func parseReport(t *testing.T, s string) string {
	var buf bytes.Buffer
	report(&buf, parse(t, s))
	return buf.String()
}
