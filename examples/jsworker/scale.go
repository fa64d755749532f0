package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// scaleRun is one measurement of -scale.
type scaleRun struct {
	procs   int
	elapsed time.Duration // from the first job published to the last acked
	rate    float64       // jobs per second over elapsed
	steady  float64       // jobs per second while the middle 80% of the jobs were processed
}

// runScale measures the throughput of each number of worker processes in
// counts, rounds times over, the counts in turn (in reverse order every
// other round, so that a machine busy with something else slows them
// alike), each on fresh streams: it starts the processes, waits until they
// all consume, then publishes cfg.Jobs jobs and times until the server has
// every one acked (its result stored).
//
// The rate is the steady one: jobs processed per second from the 10th to the
// 90th percent of the jobs, which leaves out the start, while the jobs are
// being published, and the end, when the last prefetched jobs keep one
// process busy while the others have nothing left. It prints each round, then
// per count the median rate, its share of the ideal (cfg.Workers jobs in
// flight per process, each taking cfg.Work), the median over the rounds of
// its speed-up over the first count in the same round, and the median
// end-to-end time.
func runScale(ctx context.Context, url string, cfg Config, counts []int, rounds int, out, stderr io.Writer) error {
	url, closeServer, err := demoServer(url)
	if err != nil {
		return err
	}
	defer closeServer()
	perProc := float64(cfg.Workers) / cfg.Work.Seconds()
	fmt.Fprintf(out, "scale: %d jobs, each waiting %v, %d in flight per process (ideal: %.0f jobs/s per process), %d round(s)\n",
		cfg.Jobs, cfg.Work, cfg.Workers, perProc, rounds)
	runs := make([][]scaleRun, len(counts)) // [count][round]
	for round := 0; round < rounds; round++ {
		order := make([]int, len(counts))
		for i := range order {
			order[i] = i
			if round%2 == 1 {
				order[i] = len(counts) - 1 - i
			}
		}
		for _, i := range order {
			r, err := scaleOnce(ctx, url, cfg, counts[i], stderr)
			if err != nil {
				return fmt.Errorf("%d processes: %w", counts[i], err)
			}
			runs[i] = append(runs[i], r)
		}
		fmt.Fprintf(out, "scale: round %d:", round+1)
		for i, n := range counts {
			r := runs[i][round]
			fmt.Fprintf(out, " %d proc %.0f jobs/s (%.2fx);", n, r.steady, r.steady/runs[0][round].steady)
		}
		fmt.Fprintln(out)
	}
	for i, n := range counts {
		var rates, ratios, times []float64
		for round, r := range runs[i] {
			rates = append(rates, r.steady)
			ratios = append(ratios, r.steady/runs[0][round].steady)
			times = append(times, r.elapsed.Seconds())
		}
		rate := median(rates)
		fmt.Fprintf(out, "scale: %d process(es): %.0f jobs/s, %.0f%% of the ideal, %.2fx of %d process(es); end to end %.2fs\n",
			n, rate, 100*rate/(perProc*float64(n)), median(ratios), counts[0], median(times))
	}
	return nil
}

// median returns the middle value of xs (the mean of the two middle ones if
// there is an even number).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// scaleOnce runs one measurement with n worker processes.
func scaleOnce(ctx context.Context, url string, cfg Config, n int, stderr io.Writer) (scaleRun, error) {
	nc, js, err := connect(ctx, url)
	if err != nil {
		return scaleRun{}, err
	}
	defer nc.Close()
	cons, err := freshStart(ctx, js, cfg)
	if err != nil {
		return scaleRun{}, err
	}
	led := newLedger()
	procs, err := startWorkers(n, url, cfg, led, stderr)
	if err != nil {
		return scaleRun{}, err
	}
	defer stopAll(procs, true)
	if err := waitReady(ctx, procs); err != nil {
		return scaleRun{}, err
	}
	marks := make(chan [2]time.Time, 1)
	stopWatch := make(chan struct{})
	go watchMarks(led, cfg.Jobs/10, cfg.Jobs-cfg.Jobs/10, marks, stopWatch)
	start := time.Now()
	err = produce(ctx, js, cfg)
	if err == nil {
		err = waitSettled(ctx, cons, 2*time.Minute+10*cfg.AckWait)
	}
	elapsed := time.Since(start)
	close(stopWatch)
	m := <-marks
	if err != nil {
		return scaleRun{}, err
	}
	if err := stopAll(procs, false); err != nil {
		return scaleRun{}, err
	}
	if total, _ := led.total(); total < cfg.Jobs {
		return scaleRun{}, fmt.Errorf("only %d of %d jobs processed", total, cfg.Jobs)
	}
	if m[0].IsZero() || m[1].IsZero() || !m[1].After(m[0]) {
		return scaleRun{}, fmt.Errorf("too few jobs (%d) to time the middle of the run", cfg.Jobs)
	}
	return scaleRun{procs: n, elapsed: elapsed, rate: float64(cfg.Jobs) / elapsed.Seconds(),
		steady: float64(cfg.Jobs-2*(cfg.Jobs/10)) / m[1].Sub(m[0]).Seconds()}, nil
}

// watchMarks notes when led first counts from and to jobs processed, until
// stop is closed, and then sends the two times (zero if not reached).
func watchMarks(led *ledger, from, to int, marks chan<- [2]time.Time, stop <-chan struct{}) {
	var m [2]time.Time
	defer func() { marks <- m }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			total, _ := led.total()
			if m[0].IsZero() && total >= from {
				m[0] = now
			}
			if m[1].IsZero() && total >= to {
				m[1] = now
				return
			}
		}
	}
}
