// Command ratios reads the output of the benchmark suite's rounds and prints,
// as Markdown, where the library stands against the targets of issues 5 and
// 14: its ratio to the hand-written pipeline with a context for each
// workload, W3's and Wide's efficiency against the sleeping floor, W4's
// speedups, W6's peak RSS, the latency percentiles behind a busy and a
// sleeping producer, and the cost of a small pipeline.
//
//	ratios raw.txt w6.txt
//
// raw.txt is the concatenated `go test -bench` output of the rounds, each
// round running every benchmark once (-count 1), so the i-th result of one
// benchmark and the i-th of another ran close in time: ratios are taken
// round by round, then their median and range are printed. w6.txt holds one
// line per W6 run: "W6 impl=NAME n=ITEMS maxrss_kb=KB" (bench/run.sh writes
// it). bench/run.sh runs it after benchstat.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ratios raw.txt w6.txt")
		os.Exit(2)
	}
	res, err := readFiles(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
	report(os.Stdout, res)
}

// results holds every value read: bench[name][unit] in file order (one per
// round), and rss[impl][n] in kilobytes.
type results struct {
	bench map[string]map[string][]float64
	rss   map[string]map[int][]float64
	names []string // benchmark names in the order first seen
}

func readFiles(benchPath, w6Path string) (*results, error) {
	res := &results{
		bench: map[string]map[string][]float64{},
		rss:   map[string]map[int][]float64{},
	}
	for _, path := range []string{benchPath, w6Path} {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		err = res.read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return res, nil
}

// procs is the -GOMAXPROCS suffix go test appends to benchmark names.
var procs = regexp.MustCompile(`-\d+$`)

// read adds the benchmark and W6 lines of r to res; other lines are ignored.
func (res *results) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && strings.HasPrefix(f[0], "Benchmark"):
			name := procs.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
			if res.bench[name] == nil {
				res.bench[name] = map[string][]float64{}
				res.names = append(res.names, name)
			}
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return fmt.Errorf("line %d: %w", line, err)
				}
				res.bench[name][f[i+1]] = append(res.bench[name][f[i+1]], v)
			}
		case len(f) == 4 && f[0] == "W6":
			impl := strings.TrimPrefix(f[1], "impl=")
			n, err1 := strconv.Atoi(strings.TrimPrefix(f[2], "n="))
			kb, err2 := strconv.ParseFloat(strings.TrimPrefix(f[3], "maxrss_kb="), 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("line %d: bad W6 line %q", line, sc.Text())
			}
			if res.rss[impl] == nil {
				res.rss[impl] = map[int][]float64{}
			}
			res.rss[impl][n] = append(res.rss[impl][n], kb)
		}
	}
	return sc.Err()
}

// stat is a median with the range it came from.
type stat struct {
	med, min, max float64
	n             int
}

func summarize(vs []float64) stat {
	if len(vs) == 0 {
		return stat{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: med, min: s[0], max: s[len(s)-1], n: len(s)}
}

// pairwise applies op to the i-th values of a and b, for every round both
// have.
func pairwise(a, b []float64, op func(x, y float64) float64) []float64 {
	out := make([]float64, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		out = append(out, op(a[i], b[i]))
	}
	return out
}

func ratio(x, y float64) float64 { return x / y }

// row is one line of the targets table.
type row struct {
	workload, measure, target string
	got                       stat
	unit                      string
	ok                        bool
	missing                   bool
	// inconclusive, when not empty, says why the measure cannot be judged
	// on this run.
	inconclusive string
}

// check builds a row from per-round values and a predicate on their median.
func check(workload, measure, target, unit string, vs []float64, pass func(float64) bool) row {
	s := summarize(vs)
	if s.n == 0 {
		return row{workload: workload, measure: measure, target: target, missing: true}
	}
	return row{workload: workload, measure: measure, target: target, got: s, unit: unit, ok: pass(s.med)}
}

func (res *results) values(name, unit string) []float64 { return res.bench[name][unit] }

// vsHand is the per-round ratio of the library's ns/item to the hand-written
// ctx pipeline's in the benchmark group prefix.
func (res *results) vsHand(prefix string) []float64 {
	return res.vsHandIn(prefix, "ns/item")
}

// vsHandIn is vsHand for any unit.
func (res *results) vsHandIn(prefix, unit string) []float64 {
	return pairwise(res.values(prefix+"/impl=pipeline", unit),
		res.values(prefix+"/impl=handctx", unit), ratio)
}

// vsFloor is the per-round ratio of the library's efficiency to the
// floor's in the benchmark group prefix.
func (res *results) vsFloor(prefix string) []float64 {
	return pairwise(res.values(prefix+"/impl=pipeline", "efficiency"),
		res.values(prefix+"/impl=floor", "efficiency"), ratio)
}

// w4Impls are the W4 contenders, floor last (it is the reference, not a
// contender).
func (res *results) w4Impls() []string {
	var impls []string
	for name := range res.bench {
		rest, ok := strings.CutPrefix(name, "W4/impl=")
		if impl, ok2 := strings.CutSuffix(rest, "/workers=1"); ok && ok2 && impl != "floor" {
			impls = append(impls, impl)
		}
	}
	slices.Sort(impls)
	return impls
}

func (res *results) speedup(impl string) []float64 {
	return pairwise(res.values("W4/impl="+impl+"/workers=1", "ns/item"),
		res.values("W4/impl="+impl+"/workers=2", "ns/item"), ratio)
}

// absSpeedup is the serial loop's time (the floor on 1 worker) over impl's
// time on 2 workers, round by round: the speedup measured from one baseline
// for every contender.
func (res *results) absSpeedup(impl string) []float64 {
	return pairwise(res.values("W4/impl=floor/workers=1", "ns/item"),
		res.values("W4/impl="+impl+"/workers=2", "ns/item"), ratio)
}

// roundMax is the round-by-round maximum of acc and vs (acc may be shorter).
func roundMax(acc, vs []float64) []float64 {
	for i, v := range vs {
		if i == len(acc) {
			acc = append(acc, v)
		} else {
			acc[i] = max(acc[i], v)
		}
	}
	return acc
}

func (res *results) rows() []row {
	le := func(limit float64) func(float64) bool { return func(v float64) bool { return v <= limit } }
	ge := func(limit float64) func(float64) bool { return func(v float64) bool { return v >= limit } }
	rows := []row{
		check("W1", "time/item vs handctx", "≤ 0.70×", "×", res.vsHand("W1"), le(0.70)),
		// The library allocates per job (goroutines, channels), never per
		// item: below one allocation per thousand items is zero per item.
		check("W1", "allocs/item", "0 (< 0.001)", "", res.values("W1/impl=pipeline", "allocs/item"), func(v float64) bool { return v < 0.001 }),
		check("W2 unordered", "time/item vs handctx", "≤ 0.65×", "×", res.vsHand("W2/order=unordered"), le(0.65)),
		check("W2 ordered", "time/item vs handctx ordered", "≤ 0.40×", "×", res.vsHand("W2/order=ordered"), le(0.40)),
		check("W3", "efficiency vs floor's", "≥ 0.95×", "×", res.vsFloor("W3"), ge(0.95)),
	}

	// W4, as the target is worded: each contender's speedup from 1 to 2
	// workers (its own time on 1 worker over its time on 2), the library's
	// against the best contender's, round by round.
	var best, bestTwo []float64
	for _, impl := range res.w4Impls() {
		if impl == "pipeline" {
			continue
		}
		best = roundMax(best, res.speedup(impl))
		bestTwo = roundMax(bestTwo, res.absSpeedup(impl))
	}
	w4 := check("W4", "speedup 1→2 workers vs best contender's", "≥ 0.95×", "×",
		pairwise(res.speedup("pipeline"), best, ratio), ge(0.95))
	// W4 against one baseline for all: the serial loop (the floor on one
	// worker, no goroutine at all) over each contender's time on 2 workers.
	// The library's against the best contender's is the fastest contender's
	// 2-worker time over the library's.
	w4abs := check("W4", "speedup over the serial loop, 2 workers, vs best contender's", "≥ 0.95×", "×",
		pairwise(res.absSpeedup("pipeline"), bestTwo, ratio), ge(0.95))
	// Speedups mean something only if the machine gave the benchmark two
	// free cores: the floor, a static split with no coordination at all,
	// shows whether it did.
	if fl := summarize(res.speedup("floor")); fl.n > 0 && fl.med < minFloorSpeedup {
		w4.inconclusive = fmt.Sprintf("inconclusive: the floor's own speedup is %s×, so two cores were not free", num(fl.med))
		w4abs.inconclusive = w4.inconclusive
	} else if b := summarize(best); b.n > 0 && b.med > w4Workers*superlinear {
		// Two workers cannot do CPU-bound work more than twice as fast as
		// one: a larger "speedup" means that contender's 1-worker run paid
		// an overhead its 2-worker run hides, not that it scales better.
		w4.inconclusive = fmt.Sprintf("not meaningful: the best contender's own speedup is %s×, more than %d workers can give, so its 1-worker time is no baseline (see the next row)", num(b.med), w4Workers)
	}
	rows = append(rows, w4, w4abs)

	rows = append(rows,
		check("W5 size only", "time/item vs handctx", "≤ 0.50×", "×", res.vsHand("W5/maxwait=none"), le(0.50)),
		check("W5 max wait", "time/item vs handctx", "≤ 0.60×", "×", res.vsHand("W5/maxwait=10ms"), le(0.60)))

	// W6: peak RSS above the runtime's own (impl=none), and its growth from
	// 1M to 5M items, in KiB.
	none := summarize(res.rss["none"][0]).med
	rows = append(rows,
		check("W6", "peak RSS at 5M above runtime's", "≤ 3072 KiB", " KiB",
			sub(res.rss["pipeline"][5_000_000], none), le(3072)),
		check("W6", "peak RSS 5M minus 1M", "flat (≤ 512 KiB)", " KiB",
			pairwise(res.rss["pipeline"][5_000_000], res.rss["pipeline"][1_000_000], func(x, y float64) float64 { return x - y }), le(512)))
	return append(rows, res.issue14Rows(le, ge)...)
}

// issue14Rows are the targets issue 14 adds: latency behind a busy and a
// sleeping producer within 1.1× of the hand-written pipeline's (parity, for
// the sleeping one, taken as the same bound), a small pipeline's cost, Wide
// and W3 at 98% of the floor, and W1 and W2 ordered kept where they were.
func (res *results) issue14Rows(le, ge func(float64) func(float64) bool) []row {
	var rows []row
	for _, prod := range []string{"busy", "sleeping"} {
		for _, q := range []string{"p50", "p99"} {
			rows = append(rows, check("Latency "+prod, q+" vs handctx", "≤ 1.10× (#14)", "×",
				res.vsHandIn("Latency/producer="+prod, q+"-ns"), le(1.10)))
		}
	}
	for _, order := range []string{"unordered", "ordered"} {
		prefix := "Small/order=" + order
		rows = append(rows,
			check("Small "+order, "allocs/pipeline", "≤ 25 (#14)", "", res.values(prefix+"/impl=pipeline", "allocs/pipeline"), le(25)),
			check("Small "+order, "B/pipeline", "≤ 1536 (#14)", " B", res.values(prefix+"/impl=pipeline", "B/pipeline"), le(1536)),
			check("Small "+order, "time/pipeline vs handctx", "≤ 0.70× (#14)", "×", res.vsHandIn(prefix, "ns/pipeline"), le(0.70)))
	}
	return append(rows,
		check("Wide", "efficiency vs floor's", "≥ 0.98× (#14)", "×", res.vsFloor("Wide"), ge(0.98)),
		check("W3", "efficiency vs floor's", "≥ 0.98× (#14)", "×", res.vsFloor("W3"), ge(0.98)),
		check("W1", "time/item vs handctx", "≤ 0.30× (#14)", "×", res.vsHand("W1"), le(0.30)),
		check("W2 ordered", "time/item vs handctx ordered", "≤ 0.25× (#14)", "×", res.vsHand("W2/order=ordered"), le(0.25)))
}

// minFloorSpeedup is the floor's W4 speedup below which the machine did not
// run two workers in parallel for most of the run.
const minFloorSpeedup = 1.5

// w4Workers is W4's larger worker count; a speedup above w4Workers times
// superlinear is taken as a sign of a slow 1-worker run, not of scaling
// (timing noise alone moves a speedup by a few percent).
const (
	w4Workers   = 2
	superlinear = 1.05
)

func sub(vs []float64, base float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = v - base
	}
	return out
}

// splitImpl cuts the impl=NAME element out of a benchmark name: the rest is
// the workload (row), NAME the contender (column).
func splitImpl(name string) (workload, impl string) {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if v, ok := strings.CutPrefix(p, "impl="); ok {
			return strings.Join(slices.Delete(parts, i, i+1), "/"), v
		}
	}
	return name, ""
}

// table prints the median of unit, and with spread its (min–max), for every
// workload and contender: rows and columns in the order the benchmarks ran.
func (res *results) table(w io.Writer, unit string, spread bool) {
	var rows, cols []string
	cell := map[[2]string]stat{}
	for _, name := range res.names {
		vs := res.bench[name][unit]
		if len(vs) == 0 {
			continue
		}
		wl, impl := splitImpl(name)
		if !slices.Contains(rows, wl) {
			rows = append(rows, wl)
		}
		if !slices.Contains(cols, impl) {
			cols = append(cols, impl)
		}
		cell[[2]string{wl, impl}] = summarize(vs)
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "| %s | %s |\n", unit, strings.Join(cols, " | "))
	fmt.Fprintf(w, "|---%s|\n", strings.Repeat("|---", len(cols)))
	for _, r := range rows {
		line := "| " + r
		for _, c := range cols {
			st := cell[[2]string{r, c}]
			switch {
			case spread:
				line += " | " + medRange(st)
			case st.n == 0:
				line += " | –"
			default:
				line += " | " + num(st.med)
			}
		}
		fmt.Fprintln(w, line+" |")
	}
}

func report(w io.Writer, res *results) {
	fmt.Fprintln(w, "| workload | measure | target | median | range (rounds) | meets |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range res.rows() {
		if r.missing {
			fmt.Fprintf(w, "| %s | %s | %s | – | no data | – |\n", r.workload, r.measure, r.target)
			continue
		}
		verdict := "no"
		switch {
		case r.inconclusive != "":
			verdict = r.inconclusive
		case r.ok:
			verdict = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s%s | %s–%s (%d) | %s |\n", r.workload, r.measure, r.target,
			num(r.got.med), r.unit, num(r.got.min), num(r.got.max), r.got.n, verdict)
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "W3 efficiency (20 ms ideal / actual per job); W4 speedup, own (time on 1 worker / on 2) and over the serial loop (the floor's time on 1 worker / this one's on 2):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| impl | W3 efficiency | W4 own speedup | W4 speedup over the serial loop |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, impl := range append(res.w4Impls(), "floor") {
		eff := summarize(res.values("W3/impl="+impl, "efficiency"))
		sp := summarize(res.speedup(impl))
		abs := summarize(res.absSpeedup(impl))
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", impl, medRange(eff), medRange(sp), medRange(abs))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Median ns/item of the rounds (min–max):")
	fmt.Fprintln(w)
	res.table(w, "ns/item", true)
	for _, unit := range []string{"allocs/item", "B/item"} {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Median %s of the rounds:\n\n", unit)
		res.table(w, unit, false)
	}
	for _, unit := range []string{"p50-ns", "p99-ns", "ns/pipeline", "allocs/pipeline", "B/pipeline"} {
		if !res.has(unit) {
			continue
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Median %s of the rounds (min–max):\n\n", unit)
		res.table(w, unit, true)
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "W6 peak RSS (KiB, /usr/bin/time -v):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| impl | items | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|")
	impls := make([]string, 0, len(res.rss))
	for impl := range res.rss {
		impls = append(impls, impl)
	}
	slices.Sort(impls)
	for _, impl := range impls {
		ns := make([]int, 0, len(res.rss[impl]))
		for n := range res.rss[impl] {
			ns = append(ns, n)
		}
		slices.Sort(ns)
		for _, n := range ns {
			fmt.Fprintf(w, "| %s | %d | %s |\n", impl, n, medRange(summarize(res.rss[impl][n])))
		}
	}
}

// has reports whether any benchmark reported unit.
func (res *results) has(unit string) bool {
	for _, units := range res.bench {
		if len(units[unit]) > 0 {
			return true
		}
	}
	return false
}

func medRange(s stat) string {
	if s.n == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.med), num(s.min), num(s.max))
}

// num prints three significant digits, or the whole number from 100 up.
func num(v float64) string {
	if v >= 100 || v <= -100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
