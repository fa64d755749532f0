package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/patterns.md quotes the functions of this package verbatim: each
// quote is a ```go block right after a line <!-- code NAME -->. This test
// keeps the quotes true; `go test ./patterns -run Docs -update` rewrites
// them from the source.
var exUpdate = flag.Bool("update", false, "rewrite the code blocks of docs/patterns.md from the source")

const exDoc = "../../docs/patterns.md"

// exFuncSources maps each top-level func and type of the package's
// non-test files to its source text, doc comment included.
func exFuncSources(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		require.NoError(t, err)
		for _, d := range f.Decls {
			var start, end token.Pos
			var id string
			switch d := d.(type) {
			case *ast.FuncDecl:
				id, start, end = d.Name.Name, d.Pos(), d.End()
				if d.Doc != nil {
					start = d.Doc.Pos()
				}
			case *ast.GenDecl:
				if d.Tok != token.TYPE || len(d.Specs) != 1 {
					continue
				}
				id, start, end = d.Specs[0].(*ast.TypeSpec).Name.Name, d.Pos(), d.End()
				if d.Doc != nil {
					start = d.Doc.Pos()
				}
			default:
				continue
			}
			out[id] = string(src[fset.Position(start).Offset:fset.Position(end).Offset])
		}
	}
	return out
}

var exMarker = regexp.MustCompile(`(?m)^<!-- code (\w+) -->\n` + "```go\n" + `((?s:.*?))` + "```\n")

func TestDocs_CodeBlocksQuoteTheSource(t *testing.T) {
	doc, err := os.ReadFile(exDoc)
	require.NoError(t, err)
	sources := exFuncSources(t)

	quoted := map[string]bool{}
	updated := exMarker.ReplaceAllFunc(doc, func(block []byte) []byte {
		m := exMarker.FindSubmatch(block)
		name := string(m[1])
		quoted[name] = true
		src, ok := sources[name]
		if !assert.True(t, ok, "docs quote %s, which the package does not declare", name) {
			return block
		}
		if !*exUpdate {
			assert.Equal(t, src+"\n", string(m[2]), "docs/patterns.md's quote of %s is stale: go test ./patterns -run Docs -update", name)
		}
		return []byte(fmt.Sprintf("<!-- code %s -->\n```go\n%s\n```\n", name, src))
	})
	if *exUpdate && !bytes.Equal(doc, updated) {
		require.NoError(t, os.WriteFile(exDoc, updated, 0o644))
	}

	for _, p := range patterns {
		stem := strings.TrimSuffix(p.File, ".go")
		hand, pipe := "", ""
		for name := range sources {
			if !strings.Contains(name, "Demo") && strings.HasPrefix(strings.ToLower(name), stem) {
				switch {
				case strings.HasSuffix(name, "Hand"):
					hand = name
				case strings.HasSuffix(name, "Pipe"):
					pipe = name
				}
			}
		}
		assert.True(t, quoted[hand] && hand != "", "docs quote the hand-written version of %s (%s)", p.Name, hand)
		assert.True(t, quoted[pipe] && pipe != "", "docs quote the pipeline version of %s (%s)", p.Name, pipe)
		assert.Contains(t, string(doc), "](../examples/patterns/"+p.File+")", "docs link to %s", p.File)
		assert.Contains(t, string(doc), "go run ./patterns "+p.Name+"`", "docs say how to run %s", p.Name)
	}
}
