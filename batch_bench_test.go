package pipeline_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
)

// The benchmarks below compare Batch with the batcher people write by hand:
// one goroutine, a select on the input, a ticker and the context, every send
// in a select with ctx.Done(). Both batch the same 100k ints into slices of
// 100 and hand each to a consumer that counts them. Metrics are per item;
// the batch slices themselves cost 1/100 allocation per item.
//
// Two inputs. "chan": a channel filled before the clock starts, which both
// batchers read directly; nothing else runs, so it measures the batchers
// themselves. "generate": a Generate stage in front of both; its goroutine's
// hand-off over a channel, the same for both, is then part of every item's
// time, which narrows the ratio.

const (
	batchBenchItems = 100_000
	batchBenchSize  = 100
)

// handBatch is the classic hand-written batcher. maxWait <= 0 means by
// size only (no ticker case in the select).
func handBatch(ctx context.Context, in <-chan int, size int, maxWait time.Duration) <-chan []int {
	out := make(chan []int, pipeline.DefaultBufferSize)
	go func() {
		defer close(out)
		var tick <-chan time.Time
		if maxWait > 0 {
			t := time.NewTicker(maxWait)
			defer t.Stop()
			tick = t.C
		}
		batch := make([]int, 0, size)
		flush := func() bool {
			if len(batch) == 0 {
				return true
			}
			select {
			case out <- batch:
				batch = make([]int, 0, size)
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case v, ok := <-in:
				if !ok {
					flush()
					return
				}
				batch = append(batch, v)
				if len(batch) == size && !flush() {
					return
				}
			case <-tick:
				if !flush() {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// filledChan returns a closed channel holding the ints 0..n-1.
func filledChan(n int) chan int {
	ch := make(chan int, n)
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	return ch
}

// benchPerItem times run over b.N rounds of batchBenchItems items and reports
// ns/item and allocs/item. fresh makes each round's input off the clock.
func benchPerItem[In any](b *testing.B, fresh func() In, run func(in In) int) {
	b.Helper()
	var ms runtime.MemStats
	var mallocs uint64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		in := fresh()
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		start := time.Now()
		n := run(in)
		elapsed += time.Since(start)
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - before
		if n != batchBenchItems {
			b.Fatalf("batched %d items, want %d", n, batchBenchItems)
		}
	}
	items := float64(b.N) * batchBenchItems
	b.ReportMetric(0, "ns/op") // the per-item figures below are the point
	b.ReportMetric(float64(elapsed.Nanoseconds())/items, "ns/item")
	b.ReportMetric(float64(mallocs)/items, "allocs/item")
}

func countItems(batches <-chan []int) int {
	n := 0
	for b := range batches {
		n += len(b)
	}
	return n
}

func BenchmarkBatch(b *testing.B) {
	waits := []struct {
		name    string
		maxWait time.Duration
	}{{"size-only", 0}, {"maxWait=10ms", 10 * time.Millisecond}}

	for _, w := range waits {
		// Input 1: a channel filled before the clock starts.
		b.Run("chan/"+w.name+"/impl=library", func(b *testing.B) {
			benchPerItem(b, func() chan int { return filledChan(batchBenchItems) }, func(in chan int) int {
				p := pipeline.New(context.Background())
				n := countItems(pipeline.Batch(p, in, batchBenchSize, w.maxWait))
				if err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				return n
			})
		})
		b.Run("chan/"+w.name+"/impl=hand", func(b *testing.B) {
			benchPerItem(b, func() chan int { return filledChan(batchBenchItems) }, func(in chan int) int {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				return countItems(handBatch(ctx, in, batchBenchSize, w.maxWait))
			})
		})

		// Input 2: a Generate source feeding either batcher.
		items := make([]int, batchBenchItems)
		for i := range items {
			items[i] = i
		}
		nothing := func() struct{} { return struct{}{} }
		b.Run("generate/"+w.name+"/impl=library", func(b *testing.B) {
			benchPerItem(b, nothing, func(struct{}) int {
				p := pipeline.New(context.Background())
				n := countItems(pipeline.Batch(p, pipeline.Generate(p, items...), batchBenchSize, w.maxWait))
				if err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				return n
			})
		})
		b.Run("generate/"+w.name+"/impl=hand", func(b *testing.B) {
			benchPerItem(b, nothing, func(struct{}) int {
				p := pipeline.New(context.Background())
				n := countItems(handBatch(p.Context(), pipeline.Generate(p, items...), batchBenchSize, w.maxWait))
				if err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				return n
			})
		})
	}
}
