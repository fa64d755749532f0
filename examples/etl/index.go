package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
)

// Row is one top-level declaration of a Go source file: one row of the
// decls table.
type Row struct {
	Package string // the file's package clause
	File    string // path relative to the indexed root, with forward slashes
	Kind    string // func, method, type, var or const
	Name    string // a method is named Recv.Method
	Line    int
}

// Config says what to index and where.
type Config struct {
	Src       string        // root of the tree to walk
	DB        string        // SQLite file to (re)create
	Workers   int           // parse workers; < 1 means runtime.NumCPU()
	BatchSize int           // rows per transaction; < 1 means 500
	BatchWait time.Duration // longest a row waits for its batch to fill; <= 0 means 200ms
	// CommitEvery is how often the checkpoint is saved on its own, between
	// batches (each batch saves it too); <= 0 means 1s.
	CommitEvery time.Duration
}

// Summary is what one run did.
type Summary struct {
	Files        uint64        // .go files read (parsed or skipped)
	Declarations uint64        // rows committed to the database
	Skipped      uint64        // files that could not be read or parsed
	SkippedFiles []string      // their paths, sorted
	Elapsed      time.Duration // from Start to the end of Wait
	Stopped      bool          // the walk was cut short by Stop: every file it found was still committed
	Resumed      int           // files an interrupted earlier run had committed: this run began after them
	Next         int           // the checkpoint at the end: files, in walk order, committed so far
}

// RowsPerSecond is the committed rows over the elapsed time.
func (s Summary) RowsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Declarations) / s.Elapsed.Seconds()
}

// Job is one indexing run: the pipeline walk → parse → rows → batch →
// insert, and its counters.
type Job struct {
	cfg     Config
	p       *pipeline.Pipeline
	db      *sql.DB
	batches <-chan []row
	start   time.Time

	cp   *pipeline.Checkpoint
	from int // the checkpoint this run resumed from (0: a fresh run)

	files, rows, skipped atomic.Uint64
	stopped              atomic.Bool
	walked               atomic.Bool // the walk got to the end of the tree
	mu                   sync.Mutex
	skippedFiles         []string
}

// Start opens the database and starts walking and parsing cfg.Src. If the
// database holds an unfinished run over the same tree (stopped or
// cancelled), the job resumes it: it starts after the files that run
// committed (see resume). Otherwise it empties the database and starts from
// the first file. Nothing is written until [Job.Wait] runs the insert stage.
func Start(ctx context.Context, cfg Config) (*Job, error) {
	if cfg.Workers < 1 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 200 * time.Millisecond
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = time.Second
	}
	info, err := os.Stat(cfg.Src)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", cfg.Src)
	}
	db, err := openDB(cfg.DB)
	if err != nil {
		return nil, err
	}
	from, err := resume(ctx, db, cfg.Src)
	if err != nil {
		db.Close()
		return nil, err
	}

	j := &Job{cfg: cfg, db: db, start: time.Now(), from: from}
	j.p = pipeline.New(ctx)
	// The checkpoint follows every file from the walk to the insert of its
	// last row; the position it commits is the number of files, in walk
	// order, whose rows are all in the database.
	j.cp = pipeline.NewCheckpoint(j.p, cfg.CommitEvery, j.commit)
	paths := pipeline.Produce(j.p, j.walk, pipeline.Name("walk"), j.cp.Option())
	parsed := pipeline.FanOut(j.p, paths, cfg.Workers, j.parse,
		pipeline.Name("parse"), pipeline.OnError(j.skip))
	rows := pipeline.Unbatch(j.p, parsed, pipeline.Name("rows"))
	j.batches = pipeline.Batch(j.p, rows, cfg.BatchSize, cfg.BatchWait, pipeline.Name("batch"))
	return j, nil
}

// Pipeline returns the job's pipeline, for progress and the diagram.
func (j *Job) Pipeline() *pipeline.Pipeline { return j.p }

// Stop ends the job gracefully: the walk stops, and every file already
// found is parsed and committed before [Job.Wait] returns. A signal caught
// by [pipeline.StopOnSignal] on the job's pipeline does the same.
func (j *Job) Stop() { j.p.Stop() }

// Wait inserts every batch, one transaction each, until the pipeline ends,
// then indexes the table and closes the database. The summary is valid
// whatever the error: after a cancel it counts what was committed.
func (j *Job) Wait() (Summary, error) {
	err := pipeline.ForEach(j.p, j.batches, 1, j.insert, pipeline.Name("insert"))
	// Stopped before it began, the walk neither ended nor saw the Stop.
	stopped := j.stopped.Load() || (err == nil && !j.walked.Load())
	if err == nil && !stopped {
		err = finish(context.Background(), j.db) // the next run starts afresh
	}
	next, _ := j.cp.Handled()
	if cerr := j.db.Close(); err == nil {
		err = cerr
	}
	j.mu.Lock()
	skipped := append([]string(nil), j.skippedFiles...)
	j.mu.Unlock()
	sort.Strings(skipped)
	return Summary{
		Files:        j.files.Load(),
		Declarations: j.rows.Load(),
		Skipped:      j.skipped.Load(),
		SkippedFiles: skipped,
		Elapsed:      time.Since(j.start),
		Stopped:      stopped,
		Resumed:      j.from,
		Next:         max(int(next.Offset), j.from),
	}, err
}

// file is a .go file of the tree: its path (relative to the root, with
// forward slashes) and its number in the walk, which is lexical, so the same
// tree always numbers its files alike.
type file struct {
	rel string
	seq int
}

// Position makes a file [pipeline.Positioned]: the file numbered seq spans
// [seq, seq+1), so that the checkpoint after it is seq+1, the count of files
// before the next one.
func (f file) Position() pipeline.Position {
	n := int64(f.seq)
	return pipeline.Position{Offset: n, End: n + 1, Line: n + 1, EndLine: n + 2}
}

// row is a Row and the number of its file, which the table keeps so that a
// resumed run can take out the rows of files after its checkpoint.
type row struct {
	Row
	seq int
}

// walk emits every .go file under the root, in lexical order, from the
// first one the checkpoint does not cover.
func (j *Job) walk(ctx context.Context, emit func(file) error) error {
	seq := 0
	err := filepath.WalkDir(j.cfg.Src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, err := filepath.Rel(j.cfg.Src, path)
		if err != nil {
			return err
		}
		seq++
		if seq <= j.from {
			return nil // committed by an earlier run
		}
		err = emit(file{rel: filepath.ToSlash(rel), seq: seq - 1})
		if errors.Is(err, pipeline.ErrStopped) {
			j.stopped.Store(true) // the walk was cut short
		}
		return err
	})
	if err == nil {
		j.walked.Store(true)
	}
	return err
}

// parse reads and parses one file and returns a row per top-level
// declaration.
func (j *Job) parse(_ context.Context, fl file) ([]row, error) {
	j.files.Add(1)
	src, err := os.ReadFile(filepath.Join(j.cfg.Src, filepath.FromSlash(fl.rel)))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, fl.rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	decls := Declarations(fset, fl.rel, f)
	rows := make([]row, len(decls))
	for i, d := range decls {
		rows[i] = row{Row: d, seq: fl.seq}
	}
	return rows, nil
}

// skip is the parse stage's OnError: a file that cannot be parsed is
// counted and left out; it does not fail the run.
func (j *Job) skip(err *pipeline.StageError) error {
	j.skipped.Add(1)
	if fl, ok := err.Item.(file); ok {
		j.mu.Lock()
		j.skippedFiles = append(j.skippedFiles, fl.rel)
		j.mu.Unlock()
	}
	return nil
}

// insert writes one batch in one transaction, and in the same transaction
// the checkpoint: how many files, in walk order, have every row in the
// database (those of batches already committed; this batch's files count
// once it is in). The database thus never claims a file it does not hold.
func (j *Job) insert(ctx context.Context, batch []row) error {
	handled, _ := j.cp.Handled()
	if err := insertBatch(ctx, j.db, batch, int(handled.Offset)); err != nil {
		return err
	}
	j.rows.Add(uint64(len(batch)))
	return nil
}

// commit saves the checkpoint between batches and at the end: after the
// last batch, or when no batch comes (files without declarations, files
// skipped), only the checkpoint moves.
func (j *Job) commit(ctx context.Context, pos pipeline.Position) error {
	return saveCheckpoint(ctx, j.db, int(pos.Offset))
}

// Declarations returns a row for every top-level func, method, type, var
// and const of f, in source order. Blank identifiers are left out.
func Declarations(fset *token.FileSet, rel string, f *ast.File) []Row {
	pkg := f.Name.Name
	var rows []Row
	add := func(kind string, id *ast.Ident, name string) {
		if id.Name == "_" {
			return
		}
		rows = append(rows, Row{Package: pkg, File: rel, Kind: kind, Name: name, Line: fset.Position(id.Pos()).Line})
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil && len(d.Recv.List) == 1 {
				add("method", d.Name, receiverName(d.Recv.List[0].Type)+"."+d.Name.Name)
			} else {
				add("func", d.Name, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					add("type", s.Name, s.Name.Name)
				case *ast.ValueSpec:
					for _, id := range s.Names {
						add(d.Tok.String(), id, id.Name)
					}
				}
			}
		}
	}
	return rows
}

// receiverName is the type name of a method receiver: T for T, *T, T[K]
// and *T[K, V].
func receiverName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.ParenExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return "?"
		}
	}
}
