package live

// This file holds what the handler serves as JSON and as events: the State
// of every pipeline it watches, and how it is read from Stats, with the
// rates sampled over the last minute.

import (
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

// State is what the handler serves at api/state and in each event of
// api/events: every pipeline it watches (in the order they were added),
// every limiter given with [ControlLimiter], and which controls are on.
type State struct {
	Time      time.Time       `json:"time"`
	Controls  Controls        `json:"controls"`
	Pipelines []PipelineState `json:"pipelines"`
	Limiters  []LimiterState  `json:"limiters"`
}

// Controls says which controls the page may use: Stop is on with
// [AllowStop], Limit with at least one [ControlLimiter].
type Controls struct {
	Stop  bool `json:"stop"`
	Limit bool `json:"limit"`
}

// PipelineState is one watched pipeline: its stages in creation order, the
// channels between them, and how it stands. Status is "running",
// "stopping" (a Stop was asked for through the handler), "cancelled" (its
// context is done, it has not ended yet) or "ended". Once it has ended,
// Result is its result: "nil", or the error's text. HistoryAt holds the
// times (Unix milliseconds) of the points of every stage's History.
type PipelineState struct {
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	Ended     bool         `json:"ended"`
	Result    string       `json:"result,omitempty"`
	Stages    []StageState `json:"stages"`
	Edges     []EdgeState  `json:"edges"`
	HistoryAt []int64      `json:"historyAt"`
}

// StageState is one stage, from its [pipeline.StageStats]: the counters,
// Running in seconds, the call latency's p50 and p99 in seconds (0 with no
// call timed, LatencyCount), Rate the items it took in per second over the
// last second or so (0 once the pipeline has ended), and History the same rate over the last minute, one
// point a second at most (see PipelineState.HistoryAt).
type StageState struct {
	Index        int       `json:"index"`
	Name         string    `json:"name"`
	Kind         string    `json:"kind"`
	Workers      int       `json:"workers"`
	Busy         int       `json:"busy"`
	In           uint64    `json:"in"`
	Out          uint64    `json:"out"`
	Dropped      uint64    `json:"dropped"`
	Errors       uint64    `json:"errors"`
	Retries      uint64    `json:"retries"`
	DeadLetters  uint64    `json:"deadLetters"`
	Rejected     uint64    `json:"rejected"`
	QueueLen     int       `json:"queueLen"`
	QueueCap     int       `json:"queueCap"`
	Limit        int       `json:"limit"`
	Pending      int       `json:"pending"`
	Keys         int       `json:"keys"`
	Unread       int       `json:"unread"`
	Shared       int       `json:"shared"`
	Running      float64   `json:"running"`
	Utilization  float64   `json:"utilization"`
	Bottleneck   bool      `json:"bottleneck"`
	LatencyCount uint64    `json:"latencyCount"`
	P50          float64   `json:"p50"`
	P99          float64   `json:"p99"`
	Rate         float64   `json:"rate"`
	History      []float64 `json:"history"`
}

// EdgeState is a channel from stage From to stage To (1-based indexes, as
// [pipeline.Edge]), with its upstream stage's queue: Len items of Cap.
type EdgeState struct {
	From int `json:"from"`
	To   int `json:"to"`
	Len  int `json:"len"`
	Cap  int `json:"cap"`
}

// LimiterState is a limiter given with [ControlLimiter]: its limit, the
// slots in use, the calls holding them and the calls waiting.
type LimiterState struct {
	Name     string `json:"name"`
	Limit    int    `json:"limit"`
	InUse    int    `json:"inUse"`
	InFlight int    `json:"inFlight"`
	Waiting  int    `json:"waiting"`
}

// window is how far back the history goes; spacing the least time between
// two of its samples.
const (
	window  = time.Minute
	spacing = time.Second
)

// watched is one pipeline the handler watches, with the samples of its
// stages' In counts (oldest first) that the rates come from.
type watched struct {
	name string
	p    *pipeline.Pipeline

	mu       sync.Mutex
	samples  []sample
	stopping bool   // a Stop was asked for through the handler
	ended    bool   // its Finally hooks ran
	result   string // once ended: "nil" or the error's text
}

type sample struct {
	at time.Time
	in []uint64
}

// watch returns the record of p, which learns of p's end and its result
// from a Finally hook registered last of all hooks: the hook registers
// another, which end runs after every hook of its round, so it sees the
// result as Wait returns it.
func watch(name string, p *pipeline.Pipeline) *watched {
	w := &watched{name: name, p: p}
	p.Finally(func(error) error {
		p.Finally(func(result error) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.ended, w.result = true, "nil"
			if result != nil {
				w.result = result.Error()
			}
			return nil
		})
		return nil
	})
	return w
}

// state reads the pipeline's stats at now, records a sample if the last
// one is spacing old, and returns the pipeline's state.
func (w *watched) state(now time.Time) PipelineState {
	stats := w.p.Stats()
	edges := w.p.Edges()
	in := make([]uint64, len(stats))
	for i, st := range stats {
		in[i] = st.In
	}

	w.mu.Lock()
	ps := PipelineState{Name: w.name, Status: "running", Ended: w.ended, Result: w.result}
	switch {
	case w.ended:
		ps.Status = "ended"
	case w.p.Context().Err() != nil:
		ps.Status = "cancelled"
	case w.stopping:
		ps.Status = "stopping"
	}
	if n := len(w.samples); n == 0 || now.Sub(w.samples[n-1].at) >= spacing {
		w.samples = append(w.samples, sample{at: now, in: in})
	}
	for len(w.samples) > 1 && now.Sub(w.samples[0].at) > window+spacing {
		w.samples = w.samples[1:]
	}
	samples := w.samples
	w.mu.Unlock()

	ps.Stages = make([]StageState, len(stats))
	base := baseSample(samples, now)
	for i, st := range stats {
		s := stageState(st)
		s.Index = i + 1
		if dt := now.Sub(base.at).Seconds(); dt > 0 && !ps.Ended { // an ended stage takes nothing in
			s.Rate = float64(in[i]-countAt(base, i)) / dt
		}
		s.History = make([]float64, 0, len(samples))
		for k := 1; k < len(samples); k++ {
			a, b := samples[k-1], samples[k]
			s.History = append(s.History, float64(countAt(b, i)-countAt(a, i))/b.at.Sub(a.at).Seconds())
		}
		ps.Stages[i] = s
	}
	ps.HistoryAt = make([]int64, 0, len(samples))
	for k := 1; k < len(samples); k++ {
		ps.HistoryAt = append(ps.HistoryAt, samples[k].at.UnixMilli())
	}
	ps.Edges = make([]EdgeState, 0, len(edges))
	for _, e := range edges {
		if e.From > len(stats) || e.To > len(stats) {
			continue // built after Stats was read
		}
		up := stats[e.From-1]
		ps.Edges = append(ps.Edges, EdgeState{From: e.From, To: e.To, Len: up.QueueLen, Cap: up.QueueCap})
	}
	return ps
}

// baseSample is the sample a rate at now is measured from: the newest one
// at least 3/4 of spacing old, or else the oldest.
func baseSample(samples []sample, now time.Time) sample {
	for k := len(samples) - 1; k >= 0; k-- {
		if now.Sub(samples[k].at) >= spacing*3/4 {
			return samples[k]
		}
	}
	return samples[0]
}

// countAt is stage i's In in s; 0 for a stage built after s was taken. It
// never exceeds a later count: counts only grow.
func countAt(s sample, i int) uint64 {
	if i < len(s.in) {
		return s.in[i]
	}
	return 0
}

// stageState is the JSON of one stage's stats, without its rates.
func stageState(st pipeline.StageStats) StageState {
	s := StageState{
		Name: st.Name, Kind: st.Kind, Workers: st.Workers, Busy: st.Busy,
		In: st.In, Out: st.Out, Dropped: st.Dropped, Errors: st.Errors, Retries: st.Retries,
		DeadLetters: st.DeadLetters, Rejected: st.Rejected,
		QueueLen: st.QueueLen, QueueCap: st.QueueCap, Limit: st.Limit,
		Pending: st.Pending, Keys: st.Keys, Unread: st.Unread, Shared: st.Shared,
		Running: st.Running.Seconds(), Utilization: st.Utilization, Bottleneck: st.Bottleneck,
	}
	if st.Latency != nil && st.Latency.Count() > 0 {
		s.LatencyCount = st.Latency.Count()
		s.P50 = st.Latency.Quantile(0.5).Seconds()
		s.P99 = st.Latency.Quantile(0.99).Seconds()
	}
	return s
}
