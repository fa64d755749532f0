package pipeline_test

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// layers is the order of the core's files, from the foundation up (see
// docs/architecture.md): a file may use names declared in its own file or in
// a file of a lower layer, never in a higher layer or another stage file.
var layers = [][]string{
	{"doc.go"},
	{"errors.go"},
	{"position.go"},
	{"tag.go"},
	{"limit.go", "retry.go", "breaker.go"},
	{"slot.go"},
	{"weighted.go", "adaptive.go"},
	{"aimd.go", "vegas.go"},
	{"options.go"},
	{"histogram.go"},
	{"failopts.go"},
	{"stats.go"},
	{"observer.go", "registry.go"},
	{"pipeline.go"},
	{"attach.go"},
	{"collect.go"},
	{"lifecycle.go"},
	{"diagram.go"},
	{"buffers.go"},
	{"channels.go"},
	{"observe.go"},
	{"pace.go"},
	{"engine.go"},
	{"builder.go"},
	{"workers.go"},
	{"checkpoint.go"},
	// stage files: each uses only the layers above, never another stage file
	{"source.go", "fanout.go", "ordered.go", "filter.go", "merge.go", "split.go",
		"backpressure.go", "batch.go", "sink.go", "signal.go", "keyed.go", "throttlekeyed.go", "deadletter.go"},
	// what the reader sources share, then the reader sources (on the sources' loop)
	{"readers.go"},
	{"lines.go", "csv.go"},
}

// TestLayout checks that every core file is in layers, opens with a comment
// saying what it holds, is at most about 300 lines, and uses no name declared
// in a file above it.
func TestLayout(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	layerOf := map[string]int{}
	for i, l := range layers {
		for _, f := range l {
			layerOf[f] = i
		}
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		_, known := layerOf[name]
		if !assert.True(t, known, "%s is in no layer of layout_test.go", name) {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err)
		parsed = append(parsed, f)
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		assert.LessOrEqual(t, strings.Count(string(src), "\n"), 320, "%s is longer than a few screens", name)
		if name != "doc.go" {
			opening := len(f.Comments) > 0 && f.Comments[0].Pos() < f.Decls[0].Pos() &&
				strings.HasPrefix(f.Comments[0].Text(), "This file ")
			assert.True(t, opening, "%s does not open with a comment saying what it holds", name)
		}
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check("github.com/ec0f1147/pipeline", fset, parsed, info)
	require.NoError(t, err)

	declaredIn := func(obj types.Object) (string, bool) {
		if obj == nil || obj.Pkg() != pkg || !obj.Pos().IsValid() {
			return "", false
		}
		return filepath.Base(fset.Position(obj.Pos()).Filename), true
	}
	bad := map[string]bool{}
	check := func(at token.Pos, obj types.Object) {
		decl, ok := declaredIn(obj)
		if !ok {
			return
		}
		if _, isVar := obj.(*types.Var); isVar && obj.Parent() != pkg.Scope() && !obj.(*types.Var).IsField() {
			return // a local
		}
		user := filepath.Base(fset.Position(at).Filename)
		lu, ld := layerOf[user], layerOf[decl]
		if user != decl && ld >= lu { // a higher layer, or a sibling of the same layer
			bad[user+" uses "+obj.Name()+" of "+decl] = true
		}
	}
	for id, obj := range info.Uses {
		check(id.Pos(), obj)
	}
	for sel, s := range info.Selections {
		check(sel.Sel.Pos(), s.Obj())
	}
	var found []string
	for b := range bad {
		found = append(found, b)
	}
	sort.Strings(found)
	assert.Empty(t, found, "names used from a file above the user's layer")
}
