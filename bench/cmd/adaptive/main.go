// Command adaptive measures adaptive concurrency limits: fixed limits, the
// adaptive limiters of github.com/ec0f1147/pipeline and failsafe-go's
// adaptive limiter, each in turn, run a stage of -workers workers (the
// limiter's max) against the same simulated downstream in this process.
//
// The downstream serves a call in -base while at most C calls are in flight,
// in base×n/C beyond (throughput stays C/base, latency grows), and fails
// calls beyond 2C. C changes during the run: -caps phases of -phase each
// (16, then 4, then 32). For every contender and phase it reports the
// throughput of successful calls, their p99 latency, the failures, the mean
// limit and, for the adaptive ones, when the limit re-converged. Rounds
// interleave the contenders; figures are medians over -rounds rounds.
//
//	go run ./bench/cmd/adaptive
//
// The contenders: a sweep of fixed limits (-fixed); the library's
// NewAdaptiveLimiter(1, workers) with AIMD{Threshold: -aimd × base} and with
// Vegas{} (defaults); failsafe-go's adaptivelimiter with its defaults and
// tuned (see contenders.go). Every adaptive one starts at -initial.
//
// The targets it checks, per phase: an adaptive limiter's throughput at
// least 0.9× the best fixed limit's, its p99 at most 1.5× the best fixed
// limit's, and its limit (moving average over 200 ms) inside [0.9C, 1.5C]
// for good within 2 s of the change of C. The best fixed limit of a phase is
// the one with the lowest p99 among those within 5% of the highest fixed
// throughput: the limit one would pick knowing C.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type config struct {
	base     time.Duration
	phase    time.Duration
	caps     []int
	fixed    []int
	workers  int
	initial  int
	aimd     float64 // AIMD's Threshold, in base latencies
	rounds   int
	only     string
	trace    bool
	raw      string // write every round's figures there, as JSON
	from     string // report the figures of that file instead of running
	progress io.Writer
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "adaptive:", err)
		os.Exit(2)
	}
	cfg.progress = os.Stderr
	if cfg.raw != "" {
		// Before the rounds, not after them: a path that cannot be written
		// must not cost a whole run.
		if err := os.MkdirAll(filepath.Dir(cfg.raw), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "adaptive:", err)
			os.Exit(1)
		}
	}
	var res []*result
	if cfg.from != "" {
		cfg, res, err = load(cfg.from)
	} else if res, err = run(context.Background(), cfg); err == nil && cfg.raw != "" {
		err = save(cfg.raw, cfg, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "adaptive:", err)
		os.Exit(1)
	}
	report(os.Stdout, cfg, res)
}

// rawRun is what -raw writes and -from reads.
type rawRun struct {
	Base, Phase             time.Duration
	Caps                    []int
	Workers, Initial, Count int
	Results                 []rawResult
}

type rawResult struct {
	Name     string
	Adaptive bool
	Rounds   [][]phaseResult
}

func save(path string, cfg config, res []*result) error {
	r := rawRun{Base: cfg.base, Phase: cfg.phase, Caps: cfg.caps, Workers: cfg.workers, Initial: cfg.initial, Count: cfg.rounds}
	for _, c := range res {
		r.Results = append(r.Results, rawResult{c.name, c.adaptive, c.rounds})
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func load(path string) (config, []*result, error) {
	var r rawRun
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		return config{}, nil, err
	}
	cfg := config{base: r.Base, phase: r.Phase, caps: r.Caps, workers: r.Workers, initial: r.Initial, rounds: r.Count}
	var res []*result
	for _, c := range r.Results {
		res = append(res, &result{name: c.Name, adaptive: c.Adaptive, rounds: c.Rounds})
	}
	return cfg, res, nil
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("adaptive", flag.ContinueOnError)
	cfg := config{}
	fs.DurationVar(&cfg.base, "base", 10*time.Millisecond, "latency of the downstream up to its capacity")
	fs.DurationVar(&cfg.phase, "phase", 4*time.Second, "length of each phase")
	caps := fs.String("caps", "16,4,32", "capacity of the downstream in each phase")
	fixed := fs.String("fixed", "2,4,5,6,8,12,16,20,24,32,40,48,64", "fixed limits to sweep")
	fs.IntVar(&cfg.workers, "workers", 64, "workers of the stage, and max of every adaptive limiter")
	fs.IntVar(&cfg.initial, "initial", 8, "initial limit of every adaptive limiter")
	fs.Float64Var(&cfg.aimd, "aimd", 1.25, "Threshold of the library's AIMD limiter, in base latencies")
	fs.IntVar(&cfg.rounds, "rounds", 4, "rounds; each runs every contender once")
	fs.StringVar(&cfg.only, "only", "", "run only the contenders whose name contains this")
	fs.StringVar(&cfg.raw, "raw", "", "also write every round's figures to this file, as JSON")
	fs.StringVar(&cfg.from, "from", "", "report the figures of a file written by -raw instead of running")
	fs.BoolVar(&cfg.trace, "trace", false, "print on stderr every adaptive contender's limit every 100 ms, and for the library's its adjustments by reason and its drops by a third or more")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.caps, err = ints(*caps); err != nil {
		return cfg, err
	}
	if cfg.fixed, err = ints(*fixed); err != nil {
		return cfg, err
	}
	if cfg.base <= 0 || cfg.phase <= 0 || cfg.workers < 1 || cfg.rounds < 1 || cfg.initial < 1 || cfg.aimd <= 0 {
		return cfg, fmt.Errorf("-base, -phase, -workers, -rounds, -initial and -aimd must be positive")
	}
	return cfg, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad list %q: want positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// result is one contender's figures over every round: [round][phase].
type result struct {
	name     string
	adaptive bool
	rounds   [][]phaseResult
}

func run(ctx context.Context, cfg config) ([]*result, error) {
	cs := contenders(cfg)
	if cfg.only != "" {
		cs = slices.DeleteFunc(cs, func(c contender) bool { return !strings.Contains(c.name, cfg.only) })
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("no contender matches -only %q", cfg.only)
	}
	res := make([]*result, len(cs))
	for i, c := range cs {
		res[i] = &result{name: c.name, adaptive: c.adaptive}
	}
	for round := range cfg.rounds {
		for k := range cs {
			i := (k + round) % len(cs) // a different order every round
			if cfg.progress != nil {
				fmt.Fprintf(cfg.progress, "round %d/%d: %s\n", round+1, cfg.rounds, cs[i].name)
			}
			pr, err := runOne(ctx, cfg, cs[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cs[i].name, err)
			}
			res[i].rounds = append(res[i].rounds, pr)
		}
	}
	return res, nil
}

// runOne runs one contender through every phase.
func runOne(ctx context.Context, cfg config, c contender) ([]phaseResult, error) {
	start := time.Now()
	rec := newRecorder(start, cfg.phase, len(cfg.caps))
	d := newDownstream(cfg.base, cfg.caps[0], rec)
	var why map[string]int
	var drops []string
	limit, err := c.run(ctx, cfg, d, func(st setup, stop func()) limitTrace {
		limit := st.limit
		var last time.Time
		why = map[string]int{}
		const every = 10 * time.Millisecond
		per := int(cfg.phase / every)
		tr := limitTrace{every: every, samples: make([]int, per*len(cfg.caps))}
		seen := make([]bool, len(tr.samples))
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 1; i <= len(cfg.caps); i++ {
			end := start.Add(time.Duration(i) * cfg.phase)
			for now := time.Now(); now.Before(end); now = time.Now() {
				if k := int(now.Sub(start) / every); k < len(tr.samples) {
					tr.samples[k], seen[k] = limit(), true
				}
				if st.ours != nil && cfg.trace {
					for _, a := range st.ours.Adjustments() {
						if a.Time.After(last) {
							last = a.Time
							why[a.Reason]++
							if a.To < a.From*2/3 {
								drops = append(drops, fmt.Sprintf("%.2fs %d→%d %s %v", a.Time.Sub(start).Seconds(), a.From, a.To, a.Reason, a.Latency))
							}
						}
					}
				}
				<-tick.C
			}
			if i < len(cfg.caps) {
				d.capacity.Store(int64(cfg.caps[i]))
			}
		}
		for k := 1; k < len(tr.samples); k++ { // ticks the ticker dropped
			if !seen[k] {
				tr.samples[k] = tr.samples[k-1]
			}
		}
		stop()
		return tr
	})
	if err != nil {
		return nil, err
	}
	if cfg.trace && c.adaptive && cfg.progress != nil {
		for k := 0; k < len(limit.samples); k += 10 {
			if k%int(cfg.phase/limit.every) == 0 {
				fmt.Fprintf(cfg.progress, "\n  |")
			}
			fmt.Fprintf(cfg.progress, " %d", limit.samples[k])
		}
		fmt.Fprintln(cfg.progress)
		if len(why) > 0 {
			fmt.Fprintf(cfg.progress, "  adjustments: %v\n  big drops: %s\n", why, strings.Join(drops, "; "))
		}
	}
	out := rec.results()
	for i := range out {
		out[i].MeanLimit = limit.mean(i, cfg.phase)
		if c.adaptive {
			out[i].Converged = limit.converged(i, cfg.phase, cfg.caps[i], 0.9, 1.5, 200*time.Millisecond)
		}
	}
	return out, nil
}
