package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// openDB opens the SQLite file at path, creating it if needed. WAL lets a
// query run while an index is being written; busy_timeout makes a writer
// wait for a lock instead of failing.
func openDB(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// The checkpoint is the one row of the progress table: the tree indexed,
// how many of its files (in walk order) have all their rows in decls, and
// whether the run finished. Each row of decls keeps its file's number (seq),
// so that the rows of files past the checkpoint (a batch may hold part of a
// file's rows, and files finish out of order) can be taken out on resume.

// resume prepares the database for a run over src and returns the number
// of files already done. If the database holds an unfinished run over src,
// it deletes the rows of the files past its checkpoint (they are indexed
// again) and returns the checkpoint; otherwise it empties the database and
// returns 0. Either way the database then holds exactly the rows of the
// files before the number returned: the effect of the runs is exactly once.
func resume(ctx context.Context, db *sql.DB, src string) (next int, err error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS progress (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	src  TEXT NOT NULL,
	next INTEGER NOT NULL,
	done INTEGER NOT NULL
)`); err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var was string
	var done bool
	switch err = tx.QueryRowContext(ctx, `SELECT src, next, done FROM progress`).Scan(&was, &next, &done); {
	case err == nil && was == src && !done:
		if _, err = tx.ExecContext(ctx, `DELETE FROM decls WHERE seq >= ?`, next); err != nil {
			return 0, err
		}
		return next, tx.Commit()
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `
DROP TABLE IF EXISTS decls;
CREATE TABLE decls (
	package TEXT NOT NULL,
	file    TEXT NOT NULL,
	kind    TEXT NOT NULL,
	name    TEXT NOT NULL,
	line    INTEGER NOT NULL,
	seq     INTEGER NOT NULL
);
DELETE FROM progress;`)
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO progress (id, src, next, done) VALUES (1, ?, 0, 0)`, src)
	}
	if err != nil {
		return 0, err
	}
	return 0, tx.Commit()
}

// saveCheckpoint moves the checkpoint forward to next (never back).
func saveCheckpoint(ctx context.Context, db execer, next int) error {
	_, err := db.ExecContext(ctx, `UPDATE progress SET next = ?1 WHERE next < ?1`, next)
	return err
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// finish builds the name index once the rows are in (faster than
// maintaining it row by row) and marks the run finished: the next one
// starts afresh.
func finish(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS decls_name ON decls(name); UPDATE progress SET done = 1`)
	return err
}

// insertBatch writes rows and the checkpoint next in one transaction: all
// of them or none.
func insertBatch(ctx context.Context, db *sql.DB, rows []row, next int) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO decls (package, file, kind, name, line, seq) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r.Package, r.File, r.Kind, r.Name, r.Line, r.seq); err != nil {
			return err
		}
	}
	if err := saveCheckpoint(ctx, tx, next); err != nil {
		return err
	}
	return tx.Commit()
}

// errNoIndex is returned by a query on a database that was never built.
var errNoIndex = errors.New("no index")

// Query returns the declarations named name, or methods named name on any
// type (Recv.name), ordered by file and line.
func Query(ctx context.Context, path, name string) ([]Row, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: build it first (run without -query)", errNoIndex, path)
	}
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rs, err := db.QueryContext(ctx, `
SELECT package, file, kind, name, line FROM decls
WHERE name = ?1 OR name GLOB '*.' || ?1
ORDER BY file, line`, name)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	defer rs.Close()
	var out []Row
	for rs.Next() {
		var r Row
		if err := rs.Scan(&r.Package, &r.File, &r.Kind, &r.Name, &r.Line); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}
