#!/usr/bin/env bash
# Compares the library at several commits on the suite's workloads, in one
# interleaved run:
#
#   bench/ab.sh OUTDIR REV...        e.g. bench/ab.sh bench/results/ab fb9a5fe HEAD
#
# Each REV's core is checked out in a temporary git worktree and built with
# this bench module (copied in, so every version runs the same workloads;
# a REV whose API this module does not compile against fails the build).
# ROUNDS rounds (default 8), each running every version once: the library's
# benchmarks, plus the floor of W3 and W4. Uncommitted changes are not
# included. Writes, in OUTDIR: one REV.txt (go test -bench output) per
# version, and benchstat.txt comparing them, the first REV as the baseline.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 2 ]; then
  echo "usage: bench/ab.sh OUTDIR REV..." >&2
  exit 2
fi
out=$1
shift
rounds=${ROUNDS:-8}
. "$here/common.sh"
benchstat=$(need_benchstat)
out=$(outdir "$out")
tmp=$(mktemp -d)
cleanup() {
  for wt in "$tmp"/wt-*; do
    [ -d "$wt" ] && git -C "$here" worktree remove --force "$wt"
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

names=()
for rev in "$@"; do
  name=$(git -C "$here" rev-parse --short "$rev")
  wt="$tmp/wt-$name"
  git -C "$here" worktree add -q --detach "$wt" "$rev"
  rm -rf "$wt/bench"
  mkdir "$wt/bench"
  (cd "$here" && tar --exclude=./results -cf - .) | tar -xf - -C "$wt/bench"
  echo "building $rev ($name)" >&2
  (cd "$wt/bench" && GOWORK=off GOFLAGS=-mod=mod go test -c -o "$tmp/$name.test" .)
  names+=("$name")
  : > "$out/$name.txt"
done

patterns=('W1/impl=pipeline$' 'W2/./impl=pipeline$' 'W3/impl=(pipeline|floor)$'
  'W4/impl=(pipeline|floor)$/.' 'W5/./impl=pipeline$' 'Small/./impl=pipeline$'
  'Latency/./impl=pipeline$' 'Wide/impl=(pipeline|floor)$' 'BusySource/./impl=pipeline$')
for round in $(seq "$rounds"); do
  echo "== round $round/$rounds" >&2
  for name in "${names[@]}"; do
    for pat in "${patterns[@]}"; do
      "$tmp/$name.test" -test.run '^$' -test.bench "$pat" | grep '^Benchmark' >> "$out/$name.txt"
    done
  done
done

args=()
for name in "${names[@]}"; do
  args+=("$name=$out/$name.txt")
done
"$benchstat" -filter '.unit:(ns/item OR efficiency OR ns/pipeline OR allocs/pipeline OR B/pipeline OR p50-ns OR p99-ns)' "${args[@]}" > "$out/benchstat.txt"
cat "$out/benchstat.txt"
