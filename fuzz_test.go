package pipeline_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
)

// Fuzz targets. In a plain `go test` run they replay their seed corpus
// (testdata/fuzz/<Name>/ and the f.Add seeds); `go test -fuzz=FuzzBatch`
// and so on explore further. Each input runs under guard: it must finish
// within hangBound and leave no goroutine behind.

// FuzzBatch: any size, maxWait and arrival pattern, with or without a Stop,
// delivers every emitted item once, in order, in non-empty batches of at most
// size items; a size below one is ErrInvalidArgument.
func FuzzBatch(f *testing.F) {
	f.Add(int8(3), int16(0), []byte{1, 2, 3, 4, 5, 6, 7}, uint8(0))
	f.Add(int8(4), int16(50), []byte{0, 40, 1, 0, 200, 3, 0, 0, 9}, uint8(5))
	f.Add(int8(0), int16(10), []byte{1}, uint8(0))
	f.Fuzz(func(t *testing.T, size int8, maxWaitMicros int16, pattern []byte, stopAt uint8) {
		if len(pattern) > 256 {
			pattern = pattern[:256]
		}
		maxWait := time.Duration(maxWaitMicros%2000) * time.Microsecond
		guard(t, func() {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(int(stopAt%3)))
			var emitted []int
			src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
				for i, b := range pattern {
					if b%4 == 0 { // an arrival gap of up to 63µs
						time.Sleep(time.Duration(b>>2) * time.Microsecond)
					}
					if err := emit(i); err != nil {
						return err
					}
					emitted = append(emitted, i)
					if stopAt > 0 && len(emitted) == int(stopAt) {
						p.Stop()
					}
				}
				return nil
			})
			batches, err := pipeline.Collect(p, pipeline.Batch(p, src, int(size), maxWait))
			if size < 1 {
				if !errors.Is(err, pipeline.ErrInvalidArgument) || len(batches) != 0 {
					t.Errorf("size %d: got %v and %d batches, want ErrInvalidArgument and none", size, err, len(batches))
				}
				return
			}
			if err != nil {
				t.Errorf("size %d maxWait %v: %v", size, maxWait, err)
				return
			}
			var flat []int
			for i, b := range batches {
				if len(b) == 0 || len(b) > int(size) {
					t.Errorf("batch %d holds %d items, size is %d", i, len(b), size)
				}
				if maxWait <= 0 && stopAt == 0 && i < len(batches)-1 && len(b) != int(size) {
					t.Errorf("by size only, batch %d of %d holds %d items, not %d", i, len(batches), len(b), size)
				}
				flat = append(flat, b...)
			}
			if fmt.Sprint(flat) != fmt.Sprint(emitted) {
				t.Errorf("batches hold %v, emitted %v", flat, emitted)
			}
			st := p.Stats()
			if b := st[1]; b.In != uint64(len(emitted)) || b.Out != b.In {
				t.Errorf("Batch counted In %d Out %d for %d items", b.In, b.Out, len(emitted))
			}
		})
	})
}

// FuzzFanOutOrdered: for any worker count and per-item delays (some items
// skipped through OnError), results leave in input order with no gap, and
// at most workers calls run at once; workers < 1 is ErrInvalidArgument.
func FuzzFanOutOrdered(f *testing.F) {
	f.Add(uint8(4), []byte{8, 0, 16, 1, 2, 255, 3, 40, 0, 0, 7})
	f.Add(uint8(1), []byte{0, 255, 255, 8})
	f.Add(uint8(0), []byte{1, 2})
	f.Fuzz(func(t *testing.T, workersByte uint8, delays []byte) {
		if len(delays) > 300 {
			delays = delays[:300]
		}
		workers := int(workersByte % 24)
		guard(t, func() {
			var g gauge
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(int(workersByte>>6)))
			out := pipeline.FanOutOrdered(p, pipeline.Generate(p, ints(len(delays))...), workers, func(_ context.Context, i int) (int, error) {
				g.enter()
				defer g.leave()
				switch d := delays[i]; {
				case d == 255:
					return 0, errSkip
				case d%8 == 0:
					time.Sleep(time.Duration(d/8) * time.Microsecond)
				default:
					for range d % 4 {
						runtime.Gosched()
					}
				}
				return i, nil
			}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
			got, err := pipeline.Collect(p, out)
			if workers < 1 {
				if !errors.Is(err, pipeline.ErrInvalidArgument) {
					t.Errorf("workers %d: got %v, want ErrInvalidArgument", workers, err)
				}
				return
			}
			if err != nil {
				t.Errorf("workers %d: %v", workers, err)
				return
			}
			var want []int
			for i, d := range delays {
				if d != 255 {
					want = append(want, i)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("workers %d: got %v, want %v", workers, got, want)
			}
			if peak := g.peak.Load(); peak > int64(workers) {
				t.Errorf("%d calls at once with %d workers", peak, workers)
			}
			fo := p.Stats()[1]
			if fo.In != uint64(len(delays)) || fo.Out != uint64(len(want)) || fo.Errors != fo.In-fo.Out {
				t.Errorf("stats %+v for %d items, %d kept", fo, len(delays), len(want))
			}
		})
	})
}

// fuzzRoutes decodes route values, eight bytes each (big-endian, two's
// complement: negative and huge values included).
func fuzzRoutes(b []byte) []int {
	routes := make([]int, 0, len(b)/8)
	for len(b) >= 8 && len(routes) < 200 {
		routes = append(routes, int(int64(binary.BigEndian.Uint64(b))))
		b = b[8:]
	}
	return routes
}

// FuzzPartition: every item goes to exactly one output, route(item) mod n
// wrapped into [0, n), keeping input order on each output, whatever the
// route values (negative, huge, math.MinInt); n < 1 is ErrInvalidArgument.
func FuzzPartition(f *testing.F) {
	seed := func(vals ...int64) []byte {
		b := make([]byte, 0, 8*len(vals))
		for _, v := range vals {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
		return b
	}
	f.Add(int8(3), seed(0, 1, 2, 3, -1, -2, -3, math.MinInt64, math.MaxInt64))
	f.Add(int8(1), seed(42, -42))
	f.Add(int8(-2), seed(1))
	f.Add(int8(127), seed(math.MinInt64+1, math.MaxInt64-1, 1<<62, -(1<<62)))
	f.Fuzz(func(t *testing.T, n int8, routeBytes []byte) {
		routes := fuzzRoutes(routeBytes)
		guard(t, func() {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(len(routes)%3))
			outs := pipeline.Partition(p, pipeline.Generate(p, ints(len(routes))...), int(n), func(i int) int { return routes[i] })
			if n < 1 {
				if err := p.Wait(); !errors.Is(err, pipeline.ErrInvalidArgument) || len(outs) != 0 {
					t.Errorf("n %d: got %v and %d outputs, want ErrInvalidArgument and none", n, err, len(outs))
				}
				return
			}
			if len(outs) != int(n) {
				t.Errorf("n %d: %d outputs", n, len(outs))
				return
			}
			// Read every output on one goroutine each, through Merge, tagging
			// each item with its output.
			tagged := make([]<-chan [2]int, len(outs))
			for k, o := range outs {
				tagged[k] = pipeline.FanOut(p, o, 1, func(_ context.Context, i int) ([2]int, error) { return [2]int{k, i}, nil })
			}
			got, err := pipeline.Collect(p, pipeline.Merge(p, tagged...))
			if err != nil {
				t.Errorf("%v", err)
				return
			}
			want := make([][]int, n)
			for i, r := range routes {
				k := wrap(r, int(n))
				want[k] = append(want[k], i)
			}
			have := make([][]int, n)
			for _, ki := range got {
				have[ki[0]] = append(have[ki[0]], ki[1])
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Errorf("n %d routes %v: outputs got %v, want %v", n, routes, have, want)
			}
			if pa := p.Stats()[1]; pa.In != uint64(len(routes)) || pa.Out != pa.In {
				t.Errorf("Partition counted In %d Out %d for %d items", pa.In, pa.Out, len(routes))
			}
		})
	})
}

// FuzzPipeline builds a random pipeline from the bytes (see chaos_test.go:
// sources, stages and workers, Tee and Partition branches, where it errors,
// panics, is stopped or cancelled) and checks that it returns within a
// bound, leaves no goroutine, fails if and only if something failed, and
// loses nothing when it succeeds, Stop included.
func FuzzPipeline(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512 {
			data = data[:512]
		}
		// chaosExec runs the program under hangBound and its own leak check.
		if problems, _ := chaosExec(data); len(problems) > 0 {
			t.Fatal(strings.Join(problems, "\n"))
		}
	})
}
