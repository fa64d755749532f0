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

// createSchema drops any previous index and creates an empty decls table.
// The name index is built once the rows are in (createIndex): faster than
// maintaining it row by row.
func createSchema(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `
DROP TABLE IF EXISTS decls;
CREATE TABLE decls (
	package TEXT NOT NULL,
	file    TEXT NOT NULL,
	kind    TEXT NOT NULL,
	name    TEXT NOT NULL,
	line    INTEGER NOT NULL
);`)
	return err
}

func createIndex(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS decls_name ON decls(name)`)
	return err
}

// insertBatch writes rows in one transaction: all of them or none.
func insertBatch(ctx context.Context, db *sql.DB, rows []Row) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO decls (package, file, kind, name, line) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r.Package, r.File, r.Kind, r.Name, r.Line); err != nil {
			return err
		}
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
