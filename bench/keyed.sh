#!/usr/bin/env bash
# Runs the keyed benchmarks (issue 15) in interleaved rounds and writes their
# tables:
#
#   bench/keyed.sh [OUTDIR]        (default OUTDIR: bench/results/keyed)
#
# ROUNDS rounds (default 8), each running BenchmarkKeyed and
# BenchmarkKeyedSlowKey once for every contender (-count 1), so a busy spell
# of the machine spreads over all of them. One compiled binary serves every
# round. Writes, in OUTDIR:
#   raw.txt        the go test -bench output of every round (benchstat input)
#   benchstat.txt  benchstat -col /impl raw.txt: the contenders side by side
#   ratios.txt     per round, FanOutKeyed's ns/item over each other
#                  contender's, then the median and range of those ratios;
#                  and the median (range) of each contender's figures
#   machine.txt    date, commit, go version, CPU
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/results/keyed}
rounds=${ROUNDS:-8}
. "$here/common.sh"
benchstat=$(need_benchstat)
out=$(outdir "$out")
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

cd "$here"
go test -c -o "$bin/bench.test" .
{
  echo "date:   $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- ':/*.go' ':/*go.mod' || echo ' (with uncommitted changes to Go files)')"
  echo "go:     $(go version)"
  echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "rounds: $rounds"
} > "$out/machine.txt"

: > "$out/raw.txt"
for round in $(seq "$rounds"); do
  echo "== round $round/$rounds" >&2
  "$bin/bench.test" -test.run '^$' -test.bench '^BenchmarkKeyed' -test.count 1 | tee -a "$out/raw.txt" | grep '^Benchmark' >&2
done

"$benchstat" -col /impl "$out/raw.txt" > "$out/benchstat.txt"

# value NAME UNIT: the figure before UNIT on a benchmark line.
awk '
function value(unit,   i) { for (i = 2; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
function median(list, n,   a, i, j, t) {
  split(list, a, " "); n = length(a)
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  lo = a[1]; hi = a[n]
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name)
  split(name, part, "/impl="); bench = part[1]; impl = part[2]
  k = bench SUBSEP impl; round[k]++
  ns[k, round[k]] = value("ns/item")
  p50[k, round[k]] = value("p50-µs"); p99[k, round[k]] = value("p99-µs")
  if (!(bench in seenb)) { seenb[bench] = 1; benches[++nb] = bench }
  if (!((bench, impl) in seeni)) { seeni[bench, impl] = 1; impls[bench, ++ni[bench]] = impl }
}
END {
  for (b = 1; b <= nb; b++) {
    bench = benches[b]
    printf "%s (%d rounds)\n", bench, round[bench, "pipeline"]
    for (i = 1; i <= ni[bench]; i++) {
      impl = impls[bench, i]; k = bench SUBSEP impl
      l = ""; for (r = 1; r <= round[k]; r++) l = l " " ns[k, r]
      m = median(l); line = sprintf("  %-10s ns/item %s (%s–%s)", impl, m, lo, hi)
      if (p50[k, 1] != "") {
        l = ""; for (r = 1; r <= round[k]; r++) l = l " " p50[k, r]
        m = median(l); line = line sprintf("  p50-µs %s (%s–%s)", m, lo, hi)
        l = ""; for (r = 1; r <= round[k]; r++) l = l " " p99[k, r]
        m = median(l); line = line sprintf("  p99-µs %s (%s–%s)", m, lo, hi)
      }
      print line
    }
    pk = bench SUBSEP "pipeline"
    for (i = 1; i <= ni[bench]; i++) {
      impl = impls[bench, i]; if (impl == "pipeline") continue
      k = bench SUBSEP impl; l = ""
      for (r = 1; r <= round[k] && r <= round[pk]; r++) l = l " " sprintf("%.3f", ns[pk, r] / ns[k, r])
      m = median(l)
      printf "  pipeline/%s ns/item: median %.3f× (%s–%s), per round:%s\n", impl, m, lo, hi, l
    }
  }
}' "$out/raw.txt" > "$out/ratios.txt"
cat "$out/machine.txt" "$out/benchstat.txt" "$out/ratios.txt"
