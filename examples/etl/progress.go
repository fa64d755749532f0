package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// stageSample is one stage's counters at one moment, with its output rate
// since the previous sample.
type stageSample struct {
	pipeline.StageStats
	Rate float64 // items out per second
}

// sampler turns successive Stats snapshots into rates.
type sampler struct {
	p     *pipeline.Pipeline
	start time.Time
	prev  []uint64
	prevT time.Time
}

func newSampler(p *pipeline.Pipeline) *sampler {
	s := &sampler{p: p, start: time.Now()}
	s.sample()
	return s
}

// sample returns every stage's counters and its rate since the last sample.
func (s *sampler) sample() []stageSample { return s.take(false) }

// final returns every stage's counters and its average rate since the
// sampler was made.
func (s *sampler) final() []stageSample { return s.take(true) }

func (s *sampler) take(average bool) []stageSample {
	now := time.Now()
	stats := s.p.Stats()
	out := make([]stageSample, len(stats))
	dt := now.Sub(s.prevT).Seconds()
	for i, st := range stats {
		out[i].StageStats = st
		switch {
		case average:
			out[i].Rate = float64(st.Out) / now.Sub(s.start).Seconds()
		case i < len(s.prev) && dt > 0:
			out[i].Rate = float64(st.Out-s.prev[i]) / dt
		}
	}
	s.prev = s.prev[:0]
	for _, st := range stats {
		s.prev = append(s.prev, st.Out)
	}
	s.prevT = now
	return out
}

// describe is one stage's progress in a few words: what came in, what went
// out, how full its output queue is and how fast items leave.
func describe(st stageSample) string {
	var b strings.Builder
	if st.Kind != "produce" {
		fmt.Fprintf(&b, "in %d · ", st.In)
	}
	fmt.Fprintf(&b, "out %d", st.Out)
	if st.Errors > 0 {
		fmt.Fprintf(&b, " · skipped %d", st.Errors)
	}
	if st.QueueCap > 0 {
		fmt.Fprintf(&b, " · queue %d/%d", st.QueueLen, st.QueueCap)
	}
	fmt.Fprintf(&b, " · %s/s", humanRate(st.Rate))
	return b.String()
}

func label(st pipeline.StageStats) string {
	if st.Workers > 1 {
		return fmt.Sprintf("%s ×%d", st.Name, st.Workers)
	}
	return st.Name
}

func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.0fk", r/1e3)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}

// startLines prints one line with every stage's progress each interval
// until the returned function is called; that function prints a last line
// and returns once the printer has stopped.
func startLines(p *pipeline.Pipeline, w io.Writer, every time.Duration) (stop func()) {
	s := newSampler(p)
	start := time.Now()
	print := func(snap []stageSample) {
		var parts []string
		for _, st := range snap {
			parts = append(parts, label(st.StageStats)+": "+describe(st))
		}
		fmt.Fprintf(w, "[%5.1fs] %s\n", time.Since(start).Seconds(), strings.Join(parts, " | "))
	}
	return s.every(every, print, func() {})
}

// every calls show with a fresh sample each interval until the returned
// function is called; that function stops the ticker goroutine, shows the
// final sample, then runs last.
func (s *sampler) every(interval time.Duration, show func([]stageSample), last func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				show(s.sample())
			case <-done:
				return
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(done)
		wg.Wait()
		show(s.final())
		last()
	})
}

// startBars shows one live line per stage on a terminal with mpb, refreshed
// every interval, until the returned function is called.
func startBars(p *pipeline.Pipeline, w io.Writer, every time.Duration, opts ...mpb.ContainerOption) (stop func()) {
	s := newSampler(p)
	var mu sync.Mutex
	latest := s.sample()

	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(every), mpb.WithWidth(100)}, opts...)
	progress := mpb.New(opts...)
	var bars []*mpb.Bar
	// addBars gives every stage not shown yet its line: stages may be built
	// after progress starts (a sink is built when it is called).
	addBars := func(snap []stageSample) {
		for i := len(bars); i < len(snap); i++ {
			bars = append(bars, progress.New(0, mpb.SpinnerStyle(), mpb.BarWidth(1),
				mpb.PrependDecorators(decor.Name(label(snap[i].StageStats), decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					mu.Lock()
					defer mu.Unlock()
					return describe(latest[i])
				})),
			))
		}
	}
	addBars(latest)
	update := func(snap []stageSample) {
		mu.Lock()
		latest = snap
		mu.Unlock()
		addBars(snap)
		for i, st := range snap {
			bars[i].SetCurrent(int64(st.Out))
		}
	}
	return s.every(every, update, func() {
		for _, b := range bars {
			b.SetTotal(-1, true) // complete: the bar stops and is drawn one last time
		}
		progress.Wait()
	})
}
