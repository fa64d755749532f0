package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"testing"

	"github.com/ec0f1147/pipeline"
)

// rdBenchInputs are 200,000 log lines and 200,000 CSV records.
func rdBenchInputs() (lines, records []byte) {
	var a, b bytes.Buffer
	for i := range 200_000 {
		fmt.Fprintf(&a, "2024-01-01T00:00:00Z GET /item/%d 200\n", i)
		fmt.Fprintf(&b, "%d,name %d,\"a note, quoted\",%d\n", i, i, i*7)
	}
	return a.Bytes(), b.Bytes()
}

// BenchmarkReaderSources compares Lines and CSV, which track positions,
// with the hand-written sources they replace: a bufio.Scanner or a
// csv.Reader inside Produce. Each op reads the whole input into Drain.
// Interleave the contenders:
//
//	go test -c -o /tmp/rd.test . && for i in $(seq 10); do for c in lines=pipeline lines=scanner csv=pipeline csv=encoding; do
//	  /tmp/rd.test -test.run '^$' -test.bench "BenchmarkReaderSources/$c\$" -test.benchmem; done; done | benchstat -
func BenchmarkReaderSources(b *testing.B) {
	lines, records := rdBenchInputs()
	b.Run("lines=pipeline", func(b *testing.B) {
		for range b.N {
			p := pipeline.New(context.Background())
			if err := pipeline.Drain(p, pipeline.Lines(p, bytes.NewReader(lines), 1<<20)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lines=scanner", func(b *testing.B) {
		for range b.N {
			p := pipeline.New(context.Background())
			out := pipeline.Produce(p, func(_ context.Context, emit func(string) error) error {
				sc := bufio.NewScanner(bytes.NewReader(lines))
				for sc.Scan() {
					if err := emit(sc.Text()); err != nil {
						return err
					}
				}
				return sc.Err()
			})
			if err := pipeline.Drain(p, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("csv=pipeline", func(b *testing.B) {
		for range b.N {
			p := pipeline.New(context.Background())
			if err := pipeline.Drain(p, pipeline.CSV(p, bytes.NewReader(records), 1<<20, nil)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("csv=encoding", func(b *testing.B) {
		for range b.N {
			p := pipeline.New(context.Background())
			out := pipeline.Produce(p, func(_ context.Context, emit func([]string) error) error {
				r := csv.NewReader(bytes.NewReader(records))
				for {
					rec, err := r.Read()
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					if err := emit(rec); err != nil {
						return err
					}
				}
			})
			if err := pipeline.Drain(p, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
