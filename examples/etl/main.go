// Command etl indexes Go source into SQLite with a pipeline: it walks a
// tree (the standard library's by default), parses every .go file in a pool
// of workers, turns each top-level declaration into a row, batches the rows
// and inserts each batch in one transaction.
//
//	go run ./etl                       # index $(go env GOROOT)/src into index.db
//	go run ./etl -query NewReader      # where is NewReader declared?
//	go run ./etl -diagram pipeline.md  # also write the pipeline's diagram
//	go run ./etl -http 127.0.0.1:8080  # watch it live at http://127.0.0.1:8080/
//
// Ctrl-C once stops the walk and commits everything already found; twice
// cancels at once. Either way, run it again and it resumes where it
// stopped: its checkpoint (how many files, in walk order, are all in the
// database) is kept in the database, written in the same transaction as the
// rows, and the rows of files after it are taken out and redone, so every
// file is indexed exactly once. A run that gets to the end marks the index
// done; the next one starts afresh.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "etl:", err)
		os.Exit(1)
	}
}
