// Package bench is the benchmark suite of github.com/ec0f1147/pipeline: the same
// workloads run by the library and by the code it replaces (hand-written
// channel pipelines with and without a context, errgroup with SetLimit,
// sourcegraph/conc pool and stream, alitto/pond and panjf2000/ants worker
// pools), in one `go test -bench` run so that benchstat compares them side by
// side:
//
//	go test -run '^$' -bench . -count 6 ./bench | benchstat -col /impl -
//
// Without -bench, `go test ./bench/...` runs the suite's correctness checks:
// every contender produces the right output for every workload, on small
// inputs. BENCHMARKS.md at the repository root has the workloads, the figures
// and the script (bench/run.sh) that reproduces them.
//
// It is a module of its own so that the library does not depend on its peers.
package bench
