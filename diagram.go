package pipeline

// This file draws a pipeline as a Mermaid flowchart, from the stages
// Stats reports, and lists how those stages connect (Edges).

import (
	"fmt"
	"strings"
)

// Diagram returns a Mermaid flowchart (flowchart LR) of the pipeline as
// built: one node per stage with its name, kind and worker count, and one
// arrow per channel between stages, labelled with the upstream stage's queue
// depth. Each node also shows the stage's live counters (in, out, and dropped
// and errors when not zero, and the items pending and keys held by a keyed
// stage while it holds any), so a call while the pipeline runs is a
// snapshot of its progress. A wiring mistake is marked on the stage: an
// output no stage or sink reads, and a channel that several stages or sinks
// read (each item goes to one of them); see [StageStats].Unread and Shared.
// Paste the text into a ```mermaid block of a Markdown file to have GitHub
// draw it.
func (p *Pipeline) Diagram() string { return p.diagram(false) }

// TimedDiagram is [Pipeline.Diagram] with where the time goes: each node
// also shows the stage's call latency (p50 and p99, when it calls a
// function), its utilization, and, on the bottleneck, a mark (see
// [StageStats].Bottleneck).
func (p *Pipeline) TimedDiagram() string { return p.diagram(true) }

func (p *Pipeline) diagram(timed bool) string {
	if p == nil {
		return "flowchart LR\n"
	}
	stages, stats := p.view()
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, st := range stats {
		workers := "1 worker"
		if st.Workers != 1 {
			workers = fmt.Sprintf("%d workers", st.Workers)
		}
		counts := fmt.Sprintf("in %d · out %d", st.In, st.Out)
		if st.Dropped > 0 {
			counts += fmt.Sprintf(" · dropped %d", st.Dropped)
		}
		if st.Errors > 0 {
			counts += fmt.Sprintf(" · errors %d", st.Errors)
		}
		if st.Pending > 0 || st.Keys > 0 {
			counts += fmt.Sprintf(" · pending %d · keys %d", st.Pending, st.Keys)
		}
		if st.Unread > 0 {
			counts += "<br/>⚠ output read by no stage"
		}
		if st.Shared > 0 {
			counts += "<br/>⚠ channel split between readers"
		}
		if timed {
			counts += timingText(st)
		}
		fmt.Fprintf(&b, "    s%d[\"<b>%s</b><br/>%s · %s<br/>%s\"]\n",
			i+1, mermaidText(st.Name), st.Kind, workers, counts)
	}
	for i, s := range stages {
		for _, u := range s.inputs {
			up := stats[u.index-1]
			fmt.Fprintf(&b, "    s%d -->|\"%d/%d\"| s%d\n", u.index, up.QueueLen, up.QueueCap, i+1)
		}
	}
	return b.String()
}

// Edge is one channel between two stages of a pipeline: stage From feeds
// stage To. Both are 1-based indexes in creation order, as the stages come
// in [Pipeline.Stats] (stats[From-1] feeds stats[To-1]).
type Edge struct {
	From, To int
}

// Edges returns every channel between two stages of the pipeline, the
// arrows of [Pipeline.Diagram]: for each stage in creation order, one Edge
// per input that another stage of the pipeline made. A channel made outside
// the pipeline (read by [FromChan], say) is no edge, and a sink that is not
// a stage of Stats ([Collect], [Drain], …) is no end of one. Stages are only
// ever added, so an index stays valid; a stage built after a call of Stats
// may appear in a later call of Edges.
func (p *Pipeline) Edges() []Edge {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	stages := p.stages[:len(p.stages):len(p.stages)]
	p.mu.Unlock()
	var edges []Edge
	for i, s := range stages {
		for _, u := range s.inputs {
			edges = append(edges, Edge{From: u.index, To: i + 1})
		}
	}
	return edges
}

// mermaidText escapes what would end a quoted Mermaid label.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")
	return r.Replace(s)
}

// timingText is the line of a node with its latency and utilization, and
// the bottleneck's mark.
func timingText(st StageStats) string {
	if st.Running == 0 {
		return ""
	}
	t := "<br/>"
	if st.Latency.Count() > 0 {
		t += fmt.Sprintf("p50 %v · p99 %v · ", st.Latency.Quantile(0.5), st.Latency.Quantile(0.99))
	}
	t += fmt.Sprintf("util %.0f%%", 100*st.Utilization)
	if st.Bottleneck {
		t += "<br/>⏳ bottleneck"
	}
	return t
}
