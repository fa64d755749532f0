package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Targets, per phase, for an adaptive contender against the best fixed limit.
const (
	minThroughputRatio = 0.9
	maxP99Ratio        = 1.5
	maxConverge        = 2 * time.Second
)

// best returns, for round r and phase i, the best fixed limit's index in res:
// the lowest p99 among the fixed limits within 5% of the highest fixed
// throughput. It returns -1 without fixed contenders.
func best(res []*result, r, i int) int {
	top := 0.0
	for _, c := range res {
		if !c.adaptive {
			top = max(top, c.rounds[r][i].Throughput)
		}
	}
	b := -1
	for k, c := range res {
		if c.adaptive || c.rounds[r][i].Throughput < 0.95*top {
			continue
		}
		if b < 0 || c.rounds[r][i].P99 < res[b].rounds[r][i].P99 {
			b = k
		}
	}
	return b
}

// figures are one contender's medians over the rounds in one phase.
type figures struct {
	thr, errs, limit  float64
	p99               time.Duration
	thrRatio, p99Rat  float64 // to the best fixed limit of the same round; NaN without one
	converged         time.Duration
	bestName          string // the best fixed limit (its most frequent pick)
	thrOK, p99OK, cOK bool
}

func phaseFigures(res []*result, k, i int) figures {
	c := res[k]
	var thr, errs, limit, thrR, p99R []float64
	var p99, conv []time.Duration
	picks := map[string]int{}
	for r, pr := range c.rounds {
		f := pr[i]
		thr = append(thr, f.Throughput)
		errs = append(errs, f.Errors)
		limit = append(limit, f.MeanLimit)
		p99 = append(p99, f.P99)
		cv := f.Converged
		if cv < 0 {
			cv = time.Duration(math.MaxInt64)
		}
		conv = append(conv, cv)
		if b := best(res, r, i); b >= 0 {
			bf := res[b].rounds[r][i]
			thrR = append(thrR, f.Throughput/bf.Throughput)
			p99R = append(p99R, float64(f.P99)/float64(bf.P99))
			picks[res[b].name]++
		}
	}
	fg := figures{thr: median(thr), errs: median(errs), limit: median(limit), p99: median(p99),
		thrRatio: median(thrR), p99Rat: median(p99R), converged: median(conv)}
	for name, n := range picks {
		if n > picks[fg.bestName] || (n == picks[fg.bestName] && name < fg.bestName) {
			fg.bestName = name
		}
	}
	fg.thrOK = fg.thrRatio >= minThroughputRatio
	fg.p99OK = fg.p99Rat <= maxP99Ratio
	fg.cOK = fg.converged >= 0 && fg.converged <= maxConverge // "never" is the largest Duration
	return fg
}

func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return T(math.NaN())
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return s[len(s)/2-1]/2 + s[len(s)/2]/2 // halves first: "never" is the largest Duration
}

func report(w io.Writer, cfg config, res []*result) {
	fmt.Fprintf(w, "downstream: %v per call up to C in flight, base×n/C beyond, failing beyond 2C; "+
		"phases of %v with C = %s; stage of %d workers; adaptive limits in [1, %d] from %d; %d rounds, medians\n",
		cfg.base, cfg.phase, joinInts(cfg.caps), cfg.workers, cfg.workers, cfg.initial, cfg.rounds)
	fixed := slices.ContainsFunc(res, func(c *result) bool { return !c.adaptive })
	verdicts := map[string][]string{}
	for i, c := range cfg.caps {
		fmt.Fprintf(w, "\nphase %d: C = %d (best throughput C/base = %.0f/s)\n\n", i+1, c, float64(c)/cfg.base.Seconds())
		fmt.Fprintln(w, "| contender | ok/s | × best fixed | p99 | × best fixed | errors/s | mean limit | converged |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
		bestName := ""
		for k, r := range res {
			f := phaseFigures(res, k, i)
			if f.bestName != "" {
				bestName = f.bestName
			}
			conv := ""
			if r.adaptive {
				conv = dur(f.converged)
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %.0f | %.1f | %s |\n", r.name, f.thr,
				ratio(f.thrRatio), dur(f.p99), ratio(f.p99Rat), f.errs, f.limit, conv)
			if r.adaptive && fixed {
				verdicts[r.name] = append(verdicts[r.name], fmt.Sprintf("C=%d: throughput %s, p99 %s, converged %s",
					c, mark(f.thrOK), mark(f.p99OK), mark(f.cOK)))
			}
		}
		if bestName != "" {
			fmt.Fprintf(w, "\nbest fixed limit: %s\n", bestName)
		}
	}
	if fixed {
		var all []string
		for k, r := range res {
			ok := !r.adaptive
			for i := range cfg.caps {
				f := phaseFigures(res, k, i)
				ok = ok && f.thrOK && f.p99OK
			}
			if ok {
				all = append(all, r.name)
			}
		}
		if len(all) == 0 {
			all = []string{"none"}
		}
		fmt.Fprintf(w, "\nfixed limits meeting the throughput and p99 targets in every phase: %s\n", strings.Join(all, ", "))
	}
	if len(verdicts) > 0 {
		fmt.Fprintf(w, "\ntargets (throughput >= %.1f× and p99 <= %.1f× the best fixed limit's, limit within [0.9C, 1.5C] for good within %v):\n\n",
			minThroughputRatio, maxP99Ratio, maxConverge)
		for _, r := range res {
			if v, ok := verdicts[r.name]; ok {
				fmt.Fprintf(w, "- %s: %s\n", r.name, strings.Join(v, "; "))
			}
		}
	}
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ratio(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return fmt.Sprintf("%.2f", x)
}

func dur(d time.Duration) string {
	switch {
	case d > 24*time.Hour || d < 0: // a median with "never" in it
		return "never"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
