package pipeline

// This file holds Histogram, the fixed-bucket distribution of call
// durations that StageStats reports: log-linear buckets (four per power of
// two), so that histograms of different workers and stages merge by adding
// their counts, and a quantile is read with at most 1/8 relative error.

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	histSub     = 2                                    // log2 of the buckets per power of two
	histMinExp  = 6                                    // the first bucket holds everything below 2^6 ns
	histMaxExp  = 40                                   // up to 2^40 ns (18 min); the last bucket is open-ended
	histBuckets = 1 + (histMaxExp-histMinExp)<<histSub // 137
)

// Histogram is a distribution of durations in fixed buckets: the first
// holds durations below 64 ns, then each power of two from 64 ns to 2^40 ns
// (about 18 minutes) is split in four equal buckets; the last of them also
// holds everything longer. Histograms merge by adding their counts
// ([Histogram.Merge]). The zero value is empty; a nil *Histogram reads as
// empty.
type Histogram struct {
	counts [histBuckets]uint64
	sum    time.Duration
	n      uint64
}

// histIndex returns the bucket of d.
func histIndex(d time.Duration) int {
	if d < 1<<histMinExp {
		return 0
	}
	e := bits.Len64(uint64(d)) - 1
	if e >= histMaxExp {
		return histBuckets - 1
	}
	sub := int(uint64(d)>>(e-histSub)) & (1<<histSub - 1)
	return 1 + (e-histMinExp)<<histSub + sub
}

// histUpper returns the (exclusive) upper bound of bucket i; the last
// bucket's is the largest Duration.
func histUpper(i int) time.Duration {
	if i >= histBuckets-1 {
		return time.Duration(1<<63 - 1)
	}
	e := histMinExp + i>>histSub
	sub := i & (1<<histSub - 1)
	return time.Duration(uint64(1<<histSub+sub) << (e - histSub))
}

// histLower returns the lower bound of bucket i.
func histLower(i int) time.Duration {
	if i == 0 {
		return 0
	}
	return histUpper(i - 1)
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() uint64 {
	if h == nil {
		return 0
	}
	return h.n
}

// Sum returns the total of the durations recorded.
func (h *Histogram) Sum() time.Duration {
	if h == nil {
		return 0
	}
	return h.sum
}

// Mean returns the mean duration recorded, or 0 if none was.
func (h *Histogram) Mean() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns an estimate of the q-quantile (0 ≤ q ≤ 1) of the
// durations recorded: the midpoint of the bucket where it falls, so within
// 1/8 of the true value above 64 ns. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count() == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q*float64(h.n-1)) + 1 // 1-based
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histLower(i), histUpper(i)
			if i == histBuckets-1 {
				return lo
			}
			return lo + (hi-lo)/2
		}
	}
	return histLower(histBuckets - 1)
}

// Merge adds the durations recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.sum += o.sum
	h.n += o.n
}

// Buckets calls fn for each bucket in increasing order with its upper
// bound (exclusive; the last bucket's is the largest Duration) and the
// number of durations in it, for exporters that need the raw distribution.
func (h *Histogram) Buckets(fn func(upper time.Duration, count uint64)) {
	for i := range histBuckets {
		var c uint64
		if h != nil {
			c = h.counts[i]
		}
		fn(histUpper(i), c)
	}
}

// liveHist is the histogram one worker records into, read by Stats while
// the worker writes it.
type liveHist struct {
	counts [histBuckets]atomic.Uint64
	sum    atomic.Int64
}

// add adds one duration d.
func (h *Histogram) add(d time.Duration) {
	h.counts[histIndex(d)]++
	h.n++
	h.sum += d
}

// record adds d.
func (l *liveHist) record(d time.Duration) {
	l.counts[histIndex(d)].Add(1)
	l.sum.Add(int64(d))
}

// addTo adds what l holds to h. The sum is read last: it may include a
// duration whose count is not read yet, never the other way round.
func (l *liveHist) addTo(h *Histogram) {
	for i := range l.counts {
		c := l.counts[i].Load()
		h.counts[i] += c
		h.n += c
	}
	h.sum += time.Duration(l.sum.Load())
}
