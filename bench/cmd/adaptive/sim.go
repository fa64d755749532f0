package main

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// errOverload is what the simulated downstream answers beyond twice its
// capacity.
var errOverload = errors.New("downstream overloaded")

// downstream is the simulated resource behind the limiter: a call started
// with n calls in flight (its own included) takes base while n <= capacity
// and base×n/capacity beyond it (the calls queue, throughput stays at
// capacity/base), and fails after base when n > 2×capacity (it sheds load,
// as a server answering 503 does). Its capacity may change at any time.
type downstream struct {
	base     time.Duration
	capacity atomic.Int64
	inFlight atomic.Int64
	rec      *recorder
}

func newDownstream(base time.Duration, capacity int, rec *recorder) *downstream {
	d := &downstream{base: base, rec: rec}
	d.capacity.Store(int64(capacity))
	return d
}

// call is one call of the downstream; it records its latency and outcome.
func (d *downstream) call(ctx context.Context) error {
	start := time.Now()
	n := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	c := d.capacity.Load()
	latency := d.base
	var err error
	switch {
	case n > 2*c:
		err = errOverload
	case n > c:
		latency = time.Duration(int64(d.base) * n / c)
	}
	t := time.NewTimer(latency)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
	d.rec.add(start, time.Since(start), err == nil)
	return err
}

// recorder keeps what every call of a run did, per phase of the run: a call
// belongs to the phase it started in.
type recorder struct {
	start  time.Time
	phase  time.Duration
	phases int
	mu     sync.Mutex
	ok     [][]time.Duration // latencies of the calls that succeeded, per phase
	failed []int
}

func newRecorder(start time.Time, phase time.Duration, phases int) *recorder {
	return &recorder{start: start, phase: phase, phases: phases,
		ok: make([][]time.Duration, phases), failed: make([]int, phases)}
}

func (r *recorder) add(start time.Time, latency time.Duration, ok bool) {
	i := int(start.Sub(r.start) / r.phase)
	if i < 0 || i >= r.phases {
		return // after the end: the drain of the last items
	}
	r.mu.Lock()
	if ok {
		r.ok[i] = append(r.ok[i], latency)
	} else {
		r.failed[i]++
	}
	r.mu.Unlock()
}

// phaseResult is one contender's figures in one phase of one run.
type phaseResult struct {
	Throughput float64       // successful calls per second
	Errors     float64       // failed calls per second
	P99        time.Duration // of the successful calls
	MeanLimit  float64       // mean of the limit sampled every 10 ms; 0 if unknown
	Converged  time.Duration // from the start of the phase; -1 never; 0 if unknown
}

func (r *recorder) results() []phaseResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]phaseResult, r.phases)
	secs := r.phase.Seconds()
	for i := range out {
		lat := slices.Clone(r.ok[i])
		slices.Sort(lat)
		out[i] = phaseResult{Throughput: float64(len(lat)) / secs, Errors: float64(r.failed[i]) / secs,
			P99: quantile(lat, 0.99)}
	}
	return out
}

// quantile of sorted values, by the nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// limitTrace is the limit sampled at a fixed period from the start of a run.
type limitTrace struct {
	every   time.Duration
	samples []int
}

// converged returns how long after the start of phase i (of length phase,
// capacity c) the limit's moving average over the trace's smoothing window
// entered [lo×c, hi×c] for good, or -1 if it was outside at the end.
func (t limitTrace) converged(i int, phase time.Duration, c int, lo, hi float64, smooth time.Duration) time.Duration {
	per := int(phase / t.every)
	first, last := i*per, min((i+1)*per, len(t.samples))
	w := max(1, int(smooth/t.every))
	inBand := func(k int) bool {
		sum, n := 0, 0
		for j := max(0, k-w+1); j <= k; j++ {
			sum += t.samples[j]
			n++
		}
		m := float64(sum) / float64(n)
		return m >= lo*float64(c) && m <= hi*float64(c)
	}
	if last <= first || !inBand(last-1) {
		return -1
	}
	k := last - 1
	for k > first && inBand(k-1) {
		k--
	}
	return time.Duration(k-first) * t.every
}

func (t limitTrace) mean(i int, phase time.Duration) float64 {
	per := int(phase / t.every)
	first, last := i*per, min((i+1)*per, len(t.samples))
	if last <= first {
		return 0
	}
	sum := 0
	for _, s := range t.samples[first:last] {
		sum += s
	}
	return float64(sum) / float64(last-first)
}
