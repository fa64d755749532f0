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
// cancels at once.
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
