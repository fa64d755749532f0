package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/examples/internal/syncbuf"
	"github.com/ec0f1147/pipeline/live"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vbauerster/mpb/v8"
)

// exWriteTree writes files (slash paths relative to a new temporary
// directory) and returns the directory.
func exWriteTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, src := range files {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	}
	return dir
}

// exAllRows reads the whole decls table, ordered.
func exAllRows(t *testing.T, path string) []Row {
	t.Helper()
	db, err := openDB(path)
	require.NoError(t, err)
	defer db.Close()
	rs, err := db.Query(`SELECT package, file, kind, name, line FROM decls ORDER BY file, line, name`)
	require.NoError(t, err)
	defer rs.Close()
	var out []Row
	for rs.Next() {
		var r Row
		require.NoError(t, rs.Scan(&r.Package, &r.File, &r.Kind, &r.Name, &r.Line))
		out = append(out, r)
	}
	require.NoError(t, rs.Err())
	return out
}

// exSmallTree is a tree with two packages, a file that does not parse and
// files the walk must ignore.
var exSmallTree = map[string]string{
	"alpha/alpha.go": `package alpha

import "fmt"

const Version = "1"

type Greeter struct{ name string }

func (g *Greeter) Greet() string { return fmt.Sprint("hi ", g.name) }

func New(name string) *Greeter { return &Greeter{name} }
`,
	"alpha/doc.go": "// Package alpha greets.\npackage alpha\n",
	"beta/beta.go": `package beta

var (
	Count, limit int
	_            = 0
)

type List[T any] []T

func (l List[T]) Len() int { return len(l) }
`,
	"beta/broken.go":    "package beta\n\nfunc Broken( {\n",
	"beta/README.md":    "not go\n",
	"beta/notgo.go.txt": "package nope\n",
}

var exSmallTreeRows = []Row{
	{"alpha", "alpha/alpha.go", "const", "Version", 5},
	{"alpha", "alpha/alpha.go", "type", "Greeter", 7},
	{"alpha", "alpha/alpha.go", "method", "Greeter.Greet", 9},
	{"alpha", "alpha/alpha.go", "func", "New", 11},
	{"beta", "beta/beta.go", "var", "Count", 4},
	{"beta", "beta/beta.go", "var", "limit", 4},
	{"beta", "beta/beta.go", "type", "List", 8},
	{"beta", "beta/beta.go", "method", "List.Len", 10},
}

func TestDeclarations_OneRowPerTopLevelDeclaration(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []Row
	}{
		{"func", "package p\nfunc F() {}\n", []Row{{"p", "f.go", "func", "F", 2}}},
		{"method on pointer", "package p\ntype T int\nfunc (t *T) M() {}\n",
			[]Row{{"p", "f.go", "type", "T", 2}, {"p", "f.go", "method", "T.M", 3}}},
		{"method on generic type", "package p\nfunc (m *Map[K, V]) Get() {}\n",
			[]Row{{"p", "f.go", "method", "Map.Get", 2}}},
		{"grouped consts", "package p\nconst (\n\tA = iota\n\tB\n)\n",
			[]Row{{"p", "f.go", "const", "A", 3}, {"p", "f.go", "const", "B", 4}}},
		{"blank identifiers left out", "package p\nvar _, x = 1, 2\nfunc _() {}\n",
			[]Row{{"p", "f.go", "var", "x", 2}}},
		{"imports and locals are not declarations", "package p\nimport \"os\"\nfunc f() { var y = os.Args; _ = y }\n",
			[]Row{{"p", "f.go", "func", "f", 3}}},
		{"no declarations", "package p\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "f.go", tt.src, parser.SkipObjectResolution)
			require.NoError(t, err)
			assert.Equal(t, tt.want, Declarations(fset, "f.go", f))
		})
	}
}

func TestRun_IndexesTreeIntoDatabaseAndSkipsUnparsableFiles(t *testing.T) {
	src := exWriteTree(t, exSmallTree)
	out := t.TempDir()
	db := filepath.Join(out, "index.db")
	diagram := filepath.Join(out, "pipeline.md")
	var stdout, stderr bytes.Buffer

	err := run(context.Background(), []string{"-src", src, "-db", db, "-workers", "3",
		"-progress", "lines", "-diagram", diagram}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())

	assert.Equal(t, exSmallTreeRows, exAllRows(t, db))
	summary := stdout.String()
	assert.Contains(t, summary, "files         4\n")
	assert.Contains(t, summary, "declarations  8\n")
	assert.Contains(t, summary, "skipped       1 ")
	assert.Contains(t, stderr.String(), "parse ×3: in 4 · out 3 · skipped 1")

	md, err := os.ReadFile(diagram)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(md), "```mermaid\nflowchart LR\n"), string(md))
	assert.True(t, strings.HasSuffix(string(md), "```\n"), string(md))
	for _, stage := range []string{"walk", "parse", "rows", "batch", "insert"} {
		assert.Contains(t, string(md), "<b>"+stage+"</b>")
	}
}

func TestRun_ReindexingReplacesThePreviousIndex(t *testing.T) {
	src := exWriteTree(t, exSmallTree)
	db := filepath.Join(t.TempDir(), "index.db")
	args := []string{"-src", src, "-db", db, "-progress", "none"}
	for range 2 {
		require.NoError(t, run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}))
	}
	assert.Equal(t, exSmallTreeRows, exAllRows(t, db))
}

func TestRun_QueryAnswersFromTheDatabase(t *testing.T) {
	src := exWriteTree(t, exSmallTree)
	db := filepath.Join(t.TempDir(), "index.db")
	require.NoError(t, run(context.Background(), []string{"-src", src, "-db", db, "-progress", "none"},
		&bytes.Buffer{}, &bytes.Buffer{}))

	tests := []struct {
		name, query, want string
	}{
		{"function", "New", "New: 1 declarations | func alpha.New alpha/alpha.go:11"},
		{"method by its own name", "Len", "Len: 1 declarations | method beta.List.Len beta/beta.go:10"},
		{"method by Recv.Method", "Greeter.Greet", "Greeter.Greet: 1 declarations | method alpha.Greeter.Greet alpha/alpha.go:9"},
		{"unknown", "Nope", "Nope: 0 declarations"},
		{"case matters", "new", "new: 0 declarations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			require.NoError(t, run(context.Background(), []string{"-db", db, "-query", tt.query}, &stdout, &bytes.Buffer{}))
			var lines []string
			for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			assert.Equal(t, tt.want, strings.Join(lines, " | "))
		})
	}
}

func TestRun_QueryWithoutIndexFails(t *testing.T) {
	db := filepath.Join(t.TempDir(), "missing.db")
	err := run(context.Background(), []string{"-db", db, "-query", "X"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorIs(t, err, errNoIndex)
	assert.NoFileExists(t, db)
}

func TestRun_RejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-progress", "fancy"},
		{"-every", "0s"},
		{"stray"},
		{"-src", filepath.Join(t.TempDir(), "missing")},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "index.db")
			err := run(context.Background(), append(args, "-db", db), &bytes.Buffer{}, &bytes.Buffer{})
			assert.Error(t, err)
		})
	}
}

// exBigTree writes n files of three declarations each.
func exBigTree(t *testing.T, n int) string {
	t.Helper()
	files := make(map[string]string, n)
	for i := range n {
		files[fmt.Sprintf("p%02d/f%04d.go", i%10, i)] = fmt.Sprintf(
			"package p%02d\n\ntype T%d int\n\nfunc F%d() {}\n\nvar V%d = %d\n", i%10, i, i, i, i)
	}
	return exWriteTree(t, files)
}

func TestJob_StopCommitsEveryFileAlreadyFound(t *testing.T) {
	const total = 1000
	src := exBigTree(t, total)
	db := filepath.Join(t.TempDir(), "index.db")

	// Until Wait runs the insert stage nothing drains the pipeline, so the
	// walk fills the buffers and blocks: Stop catches it mid-tree.
	job, err := Start(context.Background(), Config{Src: src, DB: db, Workers: 2, BatchSize: 4, BatchWait: time.Hour})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return job.Pipeline().Stats()[0].Out >= 50 },
		10*time.Second, time.Millisecond)
	job.Stop()
	sum, err := job.Wait()
	require.NoError(t, err)

	assert.True(t, sum.Stopped)
	assert.GreaterOrEqual(t, sum.Files, uint64(50))
	assert.Less(t, sum.Files, uint64(total), "the walk should have been stopped before the end")
	walked := job.Pipeline().Stats()[0].Out
	assert.Equal(t, walked, sum.Files, "every file the walk emitted was parsed")
	assert.Equal(t, 3*sum.Files, sum.Declarations, "every row of every parsed file was committed")

	rows := exAllRows(t, db)
	assert.Len(t, rows, int(sum.Declarations))
	files := map[string]bool{}
	for _, r := range rows {
		files[r.File] = true
	}
	assert.Len(t, files, int(sum.Files))
}

func TestJob_CancelKeepsOnlyCommittedBatches(t *testing.T) {
	src := exBigTree(t, 300)
	db := filepath.Join(t.TempDir(), "index.db")
	ctx, cancel := context.WithCancel(context.Background())
	job, err := Start(ctx, Config{Src: src, DB: db, Workers: 2, BatchSize: 4})
	require.NoError(t, err)
	cancel()
	sum, err := job.Wait()

	require.ErrorIs(t, err, context.Canceled)
	assert.Len(t, exAllRows(t, db), int(sum.Declarations), "the summary counts exactly the committed rows")
}

// exFinishedPipeline runs a three-stage pipeline to its end.
func exFinishedPipeline(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 1, 2, 3)
	sq := pipeline.FanOut(p, nums, 2, func(_ context.Context, n int) (int, error) { return n * n, nil },
		pipeline.Name("square"))
	_, err := pipeline.Collect(p, sq)
	require.NoError(t, err)
	return p
}

func TestProgressLines_LastLineShowsEveryStage(t *testing.T) {
	p := exFinishedPipeline(t)
	var w bytes.Buffer
	stop := startLines(p, &w, time.Hour)
	stop()
	stop() // idempotent
	out := w.String()
	assert.Equal(t, 1, strings.Count(out, "\n"), out)
	assert.Contains(t, out, "generate#1: in 3 · out 3 · queue 0/")
	assert.Contains(t, out, "square ×2: in 3 · out 3 · queue 0/")
}

func TestProgressBars_DrawOneLinePerStage(t *testing.T) {
	p := exFinishedPipeline(t)
	var w bytes.Buffer
	stop := startBars(p, &w, 10*time.Millisecond, mpb.WithAutoRefresh())
	stop()
	out := w.String()
	assert.Contains(t, out, "generate#1")
	assert.Contains(t, out, "square ×2")
	assert.Contains(t, out, "in 3 · out 3")
}

func TestPrintSummary_SaysHowTheRunEnded(t *testing.T) {
	tests := []struct {
		name string
		sum  Summary
		err  error
		want string
	}{
		{"to the end", Summary{Files: 3}, nil, ""},
		{"stopped", Summary{Files: 3, Stopped: true, Next: 3}, nil, "  stopped early: every file found before the stop was committed\n" +
			"  checkpoint    3 files done: run again to resume after them\n"},
		{"cancelled", Summary{Files: 3, Declarations: 500, Stopped: true, Next: 2}, context.Canceled,
			"  aborted (context canceled): the database holds the 500 rows committed before; rows in flight were discarded\n" +
				"  checkpoint    2 files done: run again to resume after them\n"},
		{"resumed", Summary{Files: 3, Resumed: 7, Next: 10}, nil, "  resumed       after the 7 files an interrupted run committed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			printSummary(&w, Config{Src: "src", DB: "x.db"}, tt.sum, tt.err)
			assert.True(t, strings.HasPrefix(w.String(), "indexed src into x.db\n"+tt.want+"  files         3\n"), w.String())
		})
	}
}

func TestSummary_RowsPerSecond(t *testing.T) {
	assert.InDelta(t, 500.0, Summary{Declarations: 1000, Elapsed: 2 * time.Second}.RowsPerSecond(), 1e-9)
	assert.Zero(t, Summary{Declarations: 1000}.RowsPerSecond())
}

func TestRun_MetricsFlagServesOnLoopback(t *testing.T) {
	src := exWriteTree(t, exSmallTree)
	db := filepath.Join(t.TempDir(), "index.db")
	var stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-src", src, "-db", db, "-progress", "none", "-metrics", ":0"},
		&bytes.Buffer{}, &stderr))
	assert.Contains(t, stderr.String(), "metrics: http://127.0.0.1:", "a bare :port binds loopback")
	assert.Equal(t, exSmallTreeRows, exAllRows(t, db))

	err := run(context.Background(), []string{"-src", src, "-db", db, "-progress", "none", "-metrics", "256.0.0.1:0"},
		&bytes.Buffer{}, &bytes.Buffer{})
	assert.Error(t, err, "an address that cannot be bound fails the run")
}

func TestRun_HTTPFlagServesTheLiveViewOnLoopback(t *testing.T) {
	src := exWriteTree(t, exSmallTree)
	db := filepath.Join(t.TempDir(), "index.db")
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-src", src, "-db", db, "-progress", "none",
			"-http", ":0", "-linger", "3s"}, &bytes.Buffer{}, &stderr)
	}()
	url, ok := stderr.AwaitAfter("live view: ", 10*time.Second)
	require.True(t, ok, "the live view's address is printed:\n%s", stderr.String())
	assert.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), "a bare :port binds loopback: %s", url)

	// The job ends while the page is still served: it shows the final counts and the result.
	var st live.State
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "api/state")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&st) == nil && len(st.Pipelines) == 1 && st.Pipelines[0].Ended
	}, 10*time.Second, 5*time.Millisecond)
	ps := st.Pipelines[0]
	assert.Equal(t, "etl", ps.Name)
	assert.Equal(t, "nil", ps.Result)
	var names []string
	for _, s := range ps.Stages {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"walk", "parse", "rows", "batch", "insert"}, names)
	assert.EqualValues(t, 4, ps.Stages[0].Out, "the four .go files")
	assert.False(t, st.Controls.Stop, "no Stop control without -http-stop")
	resp, err := http.Post(url+"api/pipelines/etl/stop", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after -linger")
	}
	assert.Equal(t, exSmallTreeRows, exAllRows(t, db))
	_, err = http.Get(url)
	assert.Error(t, err, "the page is no longer served")
}

func TestParseFlags_HTTPFlags(t *testing.T) {
	src := exWriteTree(t, exSmallTree)
	db := filepath.Join(t.TempDir(), "index.db")
	o, err := parseFlags([]string{"-src", src, "-db", db, "-http", "127.0.0.1:0", "-http-stop", "-linger", "0"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, o.httpStop)
	assert.Zero(t, o.linger)
	assert.Equal(t, "127.0.0.1:0", o.http)

	_, err = parseFlags([]string{"-linger", "-1s"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "-linger must not be negative")
	err = run(context.Background(), []string{"-src", src, "-db", db, "-progress", "none", "-http", "256.0.0.1:0"},
		&bytes.Buffer{}, &bytes.Buffer{})
	assert.Error(t, err, "an address that cannot be bound fails the run")
}
