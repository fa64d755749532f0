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
	// Regression: Diagram called while stages were being built panicked (index out of range).
	t.Run("called while stages are built it never panics", func(t *testing.T) {
		p := pipeline.New(context.Background())
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					_ = p.Diagram()
					_ = p.Stats()
				}
			}
		}()
		ch := pipeline.Generate(p, ints(10)...)
		for range 300 {
			ch = pipeline.Filter(p, ch, keepAll)
		}
		close(stop)
		<-done
		require.NoError(t, pipeline.Drain(p, ch))
		assert.Equal(t, 300, strings.Count(p.Diagram(), "-->"))
	})

	t.Run("marks an unread output and a split channel", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Generate(p, 1)
		_ = pipeline.Filter(p, src, keepAll)
		_ = pipeline.Filter(p, src, keepAll)
		d := p.Diagram()
		assert.Equal(t, 2, strings.Count(d, "⚠ output read by no stage"))
		assert.Equal(t, 3, strings.Count(d, "⚠ channel split between readers"))
		p.Stop()
		_ = p.Wait()
	})

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

// TestEdges: which stage feeds which, as Diagram draws the arrows.
func TestEdges(t *testing.T) {
	t.Run("a chain, a merge and an outside channel", func(t *testing.T) {
		p := pipeline.New(context.Background())
		outside := make(chan int)
		close(outside)
		a := pipeline.Generate(p, 1, 2)     // 1
		b := pipeline.FromChan(p, outside)  // 2: no edge in
		m := pipeline.Merge(p, a, b)        // 3: fed by 1 and 2
		f := pipeline.Filter(p, m, keepAll) // 4: fed by 3
		require.NoError(t, pipeline.Drain(p, f))
		assert.Equal(t, []pipeline.Edge{{From: 1, To: 3}, {From: 2, To: 3}, {From: 3, To: 4}}, p.Edges())
		assert.Equal(t, strings.Count(p.Diagram(), "-->"), len(p.Edges()))
	})

	t.Run("nil pipeline and no stages", func(t *testing.T) {
		var p *pipeline.Pipeline
		assert.Nil(t, p.Edges())
		assert.Empty(t, pipeline.New(context.Background()).Edges())
	})
}
