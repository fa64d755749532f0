# Shared by run.sh and ab.sh (sourced, not run).

# need_benchstat prints the path of benchstat, installing it first if this
# machine does not have it.
need_benchstat() {
  local bs
  bs=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
  if [ ! -x "$bs" ]; then
    go install golang.org/x/perf/cmd/benchstat@latest >&2
  fi
  echo "$bs"
}

# outdir creates the directory $1 if needed and prints its absolute path.
outdir() {
  mkdir -p "$1"
  (cd "$1" && pwd)
}
