package pipeline_test

// Tests of diagram.go.

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// TestDiagram: the Mermaid flowchart of a pipeline.
func TestDiagram(t *testing.T) {
	t.Run("draws one node per stage and the edges", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Generate(p, 1, 2, 3)
		sq := pipeline.FanOut(p, src, 2, identity, pipeline.Name("square"))
		big := pipeline.Filter(p, sq, func(v int) bool { return v > 1 })
		require.NoError(t, pipeline.Drain(p, big))

		d := p.Diagram()
		assert.True(t, strings.HasPrefix(d, "flowchart LR\n"), d)
		nodes := regexp.MustCompile(`(?m)^\s+s\d+\[`).FindAllString(d, -1)
		assert.Len(t, nodes, 3, d)
		for _, name := range []string{"generate#1", "square", "filter#3"} {
			assert.Contains(t, d, name)
		}
		assert.Regexp(t, `(?m)^\s+s1 -->.* s2$`, d)
		assert.Regexp(t, `(?m)^\s+s2 -->.* s3$`, d)
		assert.NotRegexp(t, `(?m)^\s+s1 -->.* s3$`, d)
	})
}
