package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
)

// BenchmarkLatency is the latency of one item from its emission to its sink
// behind a producer that emits one item every latencyEvery: generate → map on
// one worker → filter (keeps all) → sink, latencyItems items. With
// producer=busy the producer spins between items (it never parks, as a
// parser or a decoder working flat out does); with producer=sleeping it
// sleeps. Each op is one job; the figures are the p50 and p99 of every
// item's latency over all the ops of the run (ns), and ns/item.
func BenchmarkLatency(b *testing.B) {
	for _, mode := range []struct {
		name string
		wait func(next time.Time)
	}{{"busy", spinUntil}, {"sleeping", sleepUntil}} {
		b.Run("producer="+mode.name, func(b *testing.B) {
			for _, c := range []struct {
				impl string
				run  func(ctx context.Context, n int, wait func(time.Time), lat []time.Duration) error
			}{{"handctx", handLatency}, {"pipeline", pipelineLatency}, {"pipeline-unbuffered", unbufferedLatency}} {
				b.Run("impl="+c.impl, func(b *testing.B) {
					all := make([]time.Duration, 0, b.N*latencyItems)
					lat := make([]time.Duration, latencyItems)
					b.ResetTimer()
					for range b.N {
						if err := c.run(context.Background(), latencyItems, mode.wait, lat); err != nil {
							b.Fatal(err)
						}
						all = append(all, lat...)
					}
					b.StopTimer()
					slices.Sort(all)
					b.ReportMetric(float64(all[len(all)/2]), "p50-ns")
					b.ReportMetric(float64(all[len(all)*99/100]), "p99-ns")
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*latencyItems), "ns/item")
				})
			}
		})
	}
}

const (
	latencyItems = 2000
	latencyEvery = 20 * time.Microsecond
)

// stamp is an item of the latency workload: its index and when it was
// emitted.
type stamp struct {
	i  int
	at time.Time
}

// spinUntil returns at next without parking.
func spinUntil(next time.Time) {
	for time.Now().Before(next) {
	}
}

// sleepUntil sleeps until next.
func sleepUntil(next time.Time) {
	time.Sleep(time.Until(next))
}

// emitAll calls emit for n stamps, one every latencyEvery, waiting with wait.
func emitAll(n int, wait func(time.Time), emit func(stamp) bool) {
	next := time.Now()
	for i := range n {
		wait(next)
		if !emit(stamp{i, time.Now()}) {
			return
		}
		next = next.Add(latencyEvery)
	}
}

// handLatency is the workload hand-written as handCtx is: a goroutine per
// stage, unbuffered channels, every send in a select with ctx.Done().
func handLatency(ctx context.Context, n int, wait func(time.Time), lat []time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	send := func(ch chan<- stamp, s stamp) bool {
		select {
		case ch <- s:
			return true
		case <-ctx.Done():
			return false
		}
	}
	src, mapped, kept := make(chan stamp), make(chan stamp), make(chan stamp)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer close(src)
		emitAll(n, wait, func(s stamp) bool { return send(src, s) })
	}()
	go func() {
		defer wg.Done()
		defer close(mapped)
		for s := range src {
			s.i *= 3
			if !send(mapped, s) {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer close(kept)
		for s := range mapped {
			if s.i >= 0 && !send(kept, s) {
				return
			}
		}
	}()
	for s := range kept {
		lat[s.i/3] = time.Since(s.at)
	}
	wg.Wait()
	return ctx.Err()
}

// pipelineLatency is the workload on the library: Produce → FanOut(1) →
// Filter → ForEach(1).
func pipelineLatency(ctx context.Context, n int, wait func(time.Time), lat []time.Duration) error {
	return latencyOn(pipeline.New(ctx), n, wait, lat)
}

// unbufferedLatency is pipelineLatency with unbuffered outputs
// (DefaultBuffer(0)): the trade-off BenchmarkUnbuffered prices.
func unbufferedLatency(ctx context.Context, n int, wait func(time.Time), lat []time.Duration) error {
	return latencyOn(pipeline.New(ctx, pipeline.DefaultBuffer(0)), n, wait, lat)
}

func latencyOn(p *pipeline.Pipeline, n int, wait func(time.Time), lat []time.Duration) error {
	src := pipeline.Produce(p, func(_ context.Context, emit func(stamp) error) error {
		emitAll(n, wait, func(s stamp) bool { return emit(s) == nil })
		return nil
	})
	mapped := pipeline.FanOut(p, src, 1, func(_ context.Context, s stamp) (stamp, error) {
		s.i *= 3
		return s, nil
	})
	kept := pipeline.Filter(p, mapped, func(s stamp) bool { return s.i >= 0 })
	return pipeline.ForEach(p, kept, 1, func(_ context.Context, s stamp) error {
		lat[s.i/3] = time.Since(s.at)
		return nil
	})
}

// BenchmarkUnbuffered is W1 on the library with its default buffers and with
// DefaultBuffer(0), which gives the latency of unbuffered stages: what the
// latency costs a throughput-bound pipeline.
func BenchmarkUnbuffered(b *testing.B) {
	in := ints(w1Items)
	n := len(want(in, mapFilter))
	for _, c := range []struct {
		impl string
		opts []pipeline.Option
	}{{"pipeline", nil}, {"pipeline-unbuffered", []pipeline.Option{pipeline.DefaultBuffer(0)}}} {
		b.Run("impl="+c.impl, func(b *testing.B) {
			measure(b, w1Items, n, func() (int, error) {
				p := pipeline.New(context.Background(), c.opts...)
				mapped := pipeline.FanOut(p, pipeline.Generate(p, in...), 1,
					func(_ context.Context, x int) (int, error) { return mapFilter.fn(x), nil })
				out, err := pipeline.Collect(p, pipeline.Filter(p, mapped, mapFilter.keep))
				return len(out), err
			})
		})
	}
}

// BenchmarkBusySource prices the pacing of a busy source on throughput: a
// source that works (spins) src between its emits → a map on workers that
// each work fn per item → a sink, busyItems items: with the default buffers
// (the source holds back while an item it sent waits, unless that costs it
// much of its time), with the source given BufferSize(DefaultBufferSize)
// (it only yields, as before pacing), and with DefaultBuffer(0).
// shape=downbound (the map is the bottleneck) and shape=even (both as slow)
// are where holding back can cost, shape=srcbound where it should not.
func BenchmarkBusySource(b *testing.B) {
	for _, sh := range []struct {
		name    string
		src, fn time.Duration
		workers int
	}{
		{"srcbound", 5 * time.Microsecond, 2 * time.Microsecond, 1},
		{"even", 3 * time.Microsecond, 3 * time.Microsecond, 1},
		{"downbound", 2 * time.Microsecond, 6 * time.Microsecond, 2},
	} {
		b.Run("shape="+sh.name, func(b *testing.B) {
			for _, c := range []struct {
				impl string
				opts []pipeline.Option
				src  []pipeline.StageOption
			}{
				{"pipeline", nil, nil},
				{"pipeline-sourcebuffer", nil, []pipeline.StageOption{pipeline.BufferSize(pipeline.DefaultBufferSize)}},
				{"pipeline-unbuffered", []pipeline.Option{pipeline.DefaultBuffer(0)}, nil},
			} {
				b.Run("impl="+c.impl, func(b *testing.B) {
					measure(b, busyItems, busyItems, func() (int, error) {
						p := pipeline.New(context.Background(), c.opts...)
						src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
							for i := range busyItems {
								spinFor(sh.src)
								if err := emit(i); err != nil {
									return err
								}
							}
							return nil
						}, c.src...)
						mapped := pipeline.FanOut(p, src, sh.workers, func(_ context.Context, x int) (int, error) {
							spinFor(sh.fn)
							return x, nil
						})
						n := 0
						err := pipeline.ForEach(p, mapped, 1, func(context.Context, int) error { n++; return nil })
						return n, err
					})
				})
			}
		})
	}
}

const busyItems = 2000

// spinFor works (spins, never parking) for d.
func spinFor(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}
