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
}

// Summary is what one run did.
type Summary struct {
	Files        uint64        // .go files read (parsed or skipped)
	Declarations uint64        // rows committed to the database
	Skipped      uint64        // files that could not be read or parsed
	SkippedFiles []string      // their paths, sorted
	Elapsed      time.Duration // from Start to the end of Wait
	Stopped      bool          // the walk was cut short by Stop: every file it found was still committed
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
	batches <-chan []Row
	start   time.Time

	files, rows, skipped atomic.Uint64
	stopped              atomic.Bool
	mu                   sync.Mutex
	skippedFiles         []string
}

// Start opens (and empties) the database and starts walking and parsing
// cfg.Src. Nothing is written until [Job.Wait] runs the insert stage.
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
	if err := createSchema(ctx, db); err != nil {
		db.Close()
		return nil, err
	}

	j := &Job{cfg: cfg, db: db, start: time.Now()}
	j.p = pipeline.New(ctx)
	paths := pipeline.Produce(j.p, j.walk, pipeline.Name("walk"))
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
	if err == nil {
		err = createIndex(context.Background(), j.db)
	}
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
		Stopped:      j.stopped.Load(),
	}, err
}

// walk emits the path (relative to the root) of every .go file under it.
func (j *Job) walk(ctx context.Context, emit func(string) error) error {
	return filepath.WalkDir(j.cfg.Src, func(path string, d fs.DirEntry, err error) error {
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
		err = emit(filepath.ToSlash(rel))
		if errors.Is(err, pipeline.ErrStopped) {
			j.stopped.Store(true) // the walk was cut short
		}
		return err
	})
}

// parse reads and parses one file and returns a row per top-level
// declaration.
func (j *Job) parse(_ context.Context, rel string) ([]Row, error) {
	j.files.Add(1)
	src, err := os.ReadFile(filepath.Join(j.cfg.Src, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	return Declarations(fset, rel, f), nil
}

// skip is the parse stage's OnError: a file that cannot be parsed is
// counted and left out; it does not fail the run.
func (j *Job) skip(err *pipeline.StageError) error {
	j.skipped.Add(1)
	if rel, ok := err.Item.(string); ok {
		j.mu.Lock()
		j.skippedFiles = append(j.skippedFiles, rel)
		j.mu.Unlock()
	}
	return nil
}

// insert writes one batch in one transaction.
func (j *Job) insert(ctx context.Context, batch []Row) error {
	if err := insertBatch(ctx, j.db, batch); err != nil {
		return err
	}
	j.rows.Add(uint64(len(batch)))
	return nil
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
