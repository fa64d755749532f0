package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// The timed benchmarks. Sub-benchmark names carry the contender as
// impl=NAME so that benchstat puts the contenders side by side:
//
//	go test -run '^$' -bench . -count 6 ./bench | benchstat -col /impl -
//
// One op is one whole job (all the workload's items through a freshly built
// pipeline or pool), and every benchmark reports per-item figures:
// ns/item, allocs/item and B/item (from runtime.MemStats around the timed
// loop, so they include every goroutine's allocations, not only the
// benchmark goroutine's). W3 also reports efficiency = ideal time / actual.

// measure runs op b.N times and reports its cost per item. op returns how
// many items it output, so the last run can be checked against want.
func measure(b *testing.B, items, want int, op func() (int, error)) {
	b.Helper()
	measurePer(b, "item", items, want, op)
}

// measurePer is measure with the figures per unit (items units per op).
func measurePer(b *testing.B, unit string, items, want int, op func() (int, error)) {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	got := 0
	for range b.N {
		n, err := op()
		if err != nil {
			b.Fatal(err)
		}
		got = n
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	if got != want {
		b.Fatalf("got %d results, want %d", got, want)
	}
	total := float64(b.N) * float64(items)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/"+unit)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/"+unit)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/"+unit)
}

// benchContenders runs every contender of cs on one workload.
func benchContenders(b *testing.B, cs []contender, items, workers int, w work) {
	in := ints(items)
	n := len(want(in, w))
	for _, c := range cs {
		b.Run("impl="+c.impl, func(b *testing.B) {
			measure(b, items, n, func() (int, error) {
				out, err := c.run(context.Background(), in, workers, w)
				return len(out), err
			})
		})
	}
}

// BenchmarkW1 is 1,000,000 ints through generate → map(x*3) on one worker →
// filter(even) → collect.
func BenchmarkW1(b *testing.B) {
	benchContenders(b, unordered, w1Items, 1, mapFilter)
}

// BenchmarkW2 is W1 on four workers, in completion order and in input order.
func BenchmarkW2(b *testing.B) {
	b.Run("order=unordered", func(b *testing.B) {
		benchContenders(b, unordered, w1Items, w2Work, mapFilter)
	})
	b.Run("order=ordered", func(b *testing.B) {
		benchContenders(b, ordered, w1Items, w2Work, mapFilter)
	})
}

// BenchmarkW3 is 2,000 items that each sleep 1 ms on 100 workers: 20 ms if
// nothing else cost anything. It reports efficiency = 20 ms / actual time per
// job, for every contender and for the floor (goroutines sleeping in a loop,
// no distribution at all).
func BenchmarkW3(b *testing.B) {
	benchSleepy(b, w3Items, w3Workers)
}

// BenchmarkWide is W3 twenty times wider: 20,000 items that each sleep 1 ms
// on 1,000 workers (20 ms if nothing else cost anything), as an I/O-bound
// job on many connections is. Efficiency as in W3.
func BenchmarkWide(b *testing.B) {
	benchSleepy(b, wideItems, wideWorkers)
}

// benchSleepy runs every contender and the floor on items that each sleep
// w3Sleep on workers workers, and reports their efficiency.
func benchSleepy(b *testing.B, items, workers int) {
	in := ints(items)
	ideal := time.Duration(items/workers) * w3Sleep
	for _, c := range append(unordered[:len(unordered):len(unordered)], floor) {
		b.Run("impl="+c.impl, func(b *testing.B) {
			measure(b, items, items, func() (int, error) {
				out, err := c.run(context.Background(), in, workers, sleepy)
				return len(out), err
			})
			b.ReportMetric(float64(ideal.Nanoseconds())*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "efficiency")
		})
	}
}

// BenchmarkW4 is 20,000 items of ~50 µs of hashing each, on one and on two
// workers; the speedup is the ratio of the two times (bench/cmd/ratios
// computes it, round by round), next to the floor's (a static split of the
// items). Each contender's two runs are adjacent in time, so a busy spell of
// the machine tends to hit both rather than one.
func BenchmarkW4(b *testing.B) {
	in := ints(w4Items)
	n := len(want(in, hashing))
	for _, c := range append(unordered[:len(unordered):len(unordered)], floor) {
		b.Run("impl="+c.impl, func(b *testing.B) {
			for _, workers := range []int{1, 2} {
				b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
					measure(b, w4Items, n, func() (int, error) {
						out, err := c.run(context.Background(), in, workers, hashing)
						return len(out), err
					})
				})
			}
		})
	}
}

// BenchmarkW5 is 1,000,000 ints into batches of 100, by size only and with a
// max wait (10 ms, never reached: it measures the cost of the timer path).
func BenchmarkW5(b *testing.B) {
	in := ints(w5Items)
	for _, maxWait := range []time.Duration{0, w5MaxWait} {
		name := "maxwait=none"
		if maxWait > 0 {
			name = "maxwait=" + maxWait.String()
		}
		b.Run(name, func(b *testing.B) {
			for _, c := range batchers {
				b.Run("impl="+c.impl, func(b *testing.B) {
					measure(b, w5Items, w5Items, func() (int, error) {
						out, err := c.run(context.Background(), in, w5Size, maxWait)
						n := 0
						for _, batch := range out {
							n += len(batch)
						}
						return n, err
					})
				})
			}
		})
	}
}
