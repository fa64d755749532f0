#!/usr/bin/env bash
# Runs the benchmark suite of issue 5 and writes its tables:
#
#   bench/run.sh [OUTDIR]        (default OUTDIR: bench/results/latest)
#
# ROUNDS interleaved rounds (default 6): each round runs every benchmark once
# (-count 1), then the W6 program under /usr/bin/time -v, so slow spells of a
# noisy machine spread over every contender instead of hitting one. The same
# compiled binaries serve every round. Writes, in OUTDIR:
#   raw.txt        the go test -bench output of every round (benchstat input)
#   w6.txt         one line per W6 run: impl, items, peak RSS in KiB
#   benchstat.txt  benchstat -col /impl raw.txt, per-item units only:
#                  contenders side by side, medians with their spread,
#                  deltas against handctx
#   ratios.md      the library against the targets of issue 5 (bench/cmd/ratios)
#   machine.txt    date, commit, go version, CPU
# BENCH=regexp restricts the benchmarks (default: all); ROUNDS=n sets the
# rounds. Compare two runs with: benchstat OLD/raw.txt NEW/raw.txt
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/results/latest}
rounds=${ROUNDS:-6}
filter=${BENCH:-.}

if [ ! -x /usr/bin/time ]; then
  echo "run.sh: /usr/bin/time is missing (Debian: apt-get install time)" >&2
  exit 1
fi
. "$here/common.sh"
benchstat=$(need_benchstat)
out=$(outdir "$out")
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

cd "$here"
go test -c -o "$bin/bench.test" .
go build -o "$bin/w6" ./cmd/w6
go build -o "$bin/ratios" ./cmd/ratios

{
  echo "date:   $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- ':/*.go' ':/*go.mod' || echo ' (with uncommitted changes to Go files)')"
  echo "go:     $(go version)"
  echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "rounds: $rounds"
} > "$out/machine.txt"

: > "$out/raw.txt"
: > "$out/w6.txt"
for round in $(seq "$rounds"); do
  echo "== round $round/$rounds" >&2
  "$bin/bench.test" -test.run '^$' -test.bench "$filter" -test.count 1 | tee -a "$out/raw.txt" | grep '^Benchmark' >&2
  while read -r impl n; do
    kb=$( { /usr/bin/time -v "$bin/w6" -impl "$impl" -n "$n" >/dev/null; } 2>&1 |
      awk -F': ' '/Maximum resident set size/ { print $2 }')
    echo "W6 impl=$impl n=$n maxrss_kb=$kb" | tee -a "$out/w6.txt" >&2
  done <<'RUNS'
none 0
pipeline 0
pipeline 1000000
pipeline 5000000
handctx 1000000
handctx 5000000
RUNS
done

"$benchstat" -col /impl -filter '.unit:(ns/item OR allocs/item OR B/item OR efficiency)' \
  "$out/raw.txt" > "$out/benchstat.txt"
"$bin/ratios" "$out/raw.txt" "$out/w6.txt" > "$out/ratios.md"
cat "$out/machine.txt" "$out/benchstat.txt" "$out/ratios.md"
