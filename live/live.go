package live

// This file holds the Handler, its options, and what it serves: the page
// and its assets, the state as JSON and as Server-Sent Events, and the
// controls (Stop, a limiter's limit), which are off unless an option turns
// them on.

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

//go:embed assets
var assets embed.FS

// DefaultInterval is how often the event stream sends the state unless
// [Interval] says otherwise: a few times a second.
const DefaultInterval = 250 * time.Millisecond

// Handler serves the live view of the pipelines it watches (see the
// package documentation for its routes). Make it with [New]; it is safe
// for concurrent use, and needs no goroutine of its own: each event stream
// runs on its request's goroutine and ends when its client goes away.
type Handler struct {
	mux      *http.ServeMux
	interval time.Duration
	stop     bool
	limiters []namedLimiter
	problem  error // an option's mistake: New reports it in every answer

	mu        sync.Mutex
	pipelines []*watched
}

type namedLimiter struct {
	name string
	l    *pipeline.Limiter
}

// Option configures a [Handler] in [New].
type Option func(*Handler)

// Watch adds pipeline p to the view under name, as [Handler.Add] does.
func Watch(name string, p *pipeline.Pipeline) Option {
	return func(h *Handler) {
		if err := h.Add(name, p); err != nil && h.problem == nil {
			h.problem = err
		}
	}
}

// AllowStop turns on the Stop control: a POST to
// api/pipelines/NAME/stop stops pipeline NAME as [pipeline.Pipeline.Stop]
// does (its sources end, every item emitted is delivered). Without it the
// control answers 403. Serve such a handler on 127.0.0.1 only.
func AllowStop() Option {
	return func(h *Handler) { h.stop = true }
}

// ControlLimiter shows limiter l under name and turns on the control that
// sets its limit: a POST to api/limiters/NAME/limit with the value limit=N
// calls l.SetLimit(N). Without any ControlLimiter that control answers
// 403. Serve such a handler on 127.0.0.1 only.
func ControlLimiter(name string, l *pipeline.Limiter) Option {
	return func(h *Handler) {
		var err error
		switch {
		case name == "":
			err = errors.New("live: ControlLimiter: empty name")
		case l == nil:
			err = fmt.Errorf("live: ControlLimiter(%q): nil limiter", name)
		case h.limiter(name) != nil:
			err = fmt.Errorf("live: ControlLimiter(%q): name given twice", name)
		default:
			h.limiters = append(h.limiters, namedLimiter{name, l})
		}
		if err != nil && h.problem == nil {
			h.problem = err
		}
	}
}

// Interval sets how often the event stream sends the state (default
// [DefaultInterval]); d <= 0 keeps the default.
func Interval(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.interval = d
		}
	}
}

// New returns a handler for the live view with opts. A mistake in an
// option (an empty or repeated name, a nil pipeline or limiter) makes every
// answer of the handler a 500 naming it, so that it shows at once.
func New(opts ...Option) *Handler {
	h := &Handler{interval: DefaultInterval}
	for _, o := range opts {
		if o != nil {
			o(h)
		}
	}
	static, _ := fs.Sub(assets, "assets")
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.page)
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /api/state", h.serveState)
	m.HandleFunc("GET /api/events", h.serveEvents)
	m.HandleFunc("POST /api/pipelines/{name}/stop", h.serveStop)
	m.HandleFunc("POST /api/limiters/{name}/limit", h.serveLimit)
	h.mux = m
	return h
}

// Add adds pipeline p to the view under name, after those added before; a
// pipeline stays in the view once it has ended, with its final counts and
// its result. Add may be called while the handler serves (a program that
// runs one pipeline after another adds each). It returns an error for an
// empty name, a name already added, or a nil p.
func (h *Handler) Add(name string, p *pipeline.Pipeline) error {
	if name == "" {
		return errors.New("live: empty pipeline name")
	}
	if p == nil {
		return fmt.Errorf("live: pipeline %q is nil", name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.pipelines {
		if w.name == name {
			return fmt.Errorf("live: pipeline %q added twice", name)
		}
	}
	h.pipelines = append(h.pipelines, watch(name, p))
	return nil
}

// ServeHTTP serves the page, the state and the controls.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.problem != nil {
		http.Error(w, h.problem.Error(), http.StatusInternalServerError)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// State returns the state of every pipeline the handler watches now, as
// api/state serves it. Each call may record a sample of the counters for
// the rates and their history (at most one a second).
func (h *Handler) State() State {
	st, _ := h.state("")
	return st
}

// state is State, of the pipeline named only (all if only is empty); false
// if there is no such pipeline.
func (h *Handler) state(only string) (State, bool) {
	h.mu.Lock()
	ws := h.pipelines[:len(h.pipelines):len(h.pipelines)]
	h.mu.Unlock()
	now := time.Now()
	st := State{
		Time:      now,
		Controls:  Controls{Stop: h.stop, Limit: len(h.limiters) > 0},
		Pipelines: []PipelineState{},
		Limiters:  []LimiterState{},
	}
	for _, w := range ws {
		if only == "" || w.name == only {
			st.Pipelines = append(st.Pipelines, w.state(now))
		}
	}
	for _, l := range h.limiters {
		st.Limiters = append(st.Limiters, LimiterState{
			Name: l.name, Limit: l.l.Limit(), InUse: l.l.InUse(), InFlight: l.l.InFlight(), Waiting: l.l.Waiting(),
		})
	}
	return st, only == "" || len(st.Pipelines) > 0
}

// page serves the page.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// serveState serves the state as JSON.
func (h *Handler) serveState(w http.ResponseWriter, r *http.Request) {
	st, ok := h.state(r.URL.Query().Get("pipeline"))
	if !ok {
		unknownPipeline(w, r.URL.Query().Get("pipeline"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(st)
}

// serveEvents streams the state as Server-Sent Events, one "state" event
// at once and one every interval, until the client goes away.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	only := r.URL.Query().Get("pipeline")
	if _, ok := h.state(only); !ok {
		unknownPipeline(w, only)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		st, _ := h.state(only)
		buf.Reset()
		buf.WriteString("event: state\ndata: ")
		if err := json.NewEncoder(&buf).Encode(st); err != nil { // ends in a newline
			return
		}
		buf.WriteString("\n")
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// serveStop is the Stop control.
func (h *Handler) serveStop(w http.ResponseWriter, r *http.Request) {
	if !h.stop {
		http.Error(w, "live: the Stop control is off (the handler was made without live.AllowStop)", http.StatusForbidden)
		return
	}
	if !sameOrigin(w, r) {
		return
	}
	name := r.PathValue("name")
	h.mu.Lock()
	var found *watched
	for _, p := range h.pipelines {
		if p.name == name {
			found = p
		}
	}
	h.mu.Unlock()
	if found == nil {
		unknownPipeline(w, name)
		return
	}
	found.mu.Lock()
	found.stopping = true
	found.mu.Unlock()
	found.p.Stop()
	writeJSON(w, http.StatusAccepted, map[string]any{"pipeline": name, "stopping": true})
}

// serveLimit is the control that sets a limiter's limit.
func (h *Handler) serveLimit(w http.ResponseWriter, r *http.Request) {
	if len(h.limiters) == 0 {
		http.Error(w, "live: the limit control is off (the handler was made without live.ControlLimiter)", http.StatusForbidden)
		return
	}
	if !sameOrigin(w, r) {
		return
	}
	name := r.PathValue("name")
	l := h.limiter(name)
	if l == nil {
		http.Error(w, fmt.Sprintf("live: no limiter %q (the handler controls %s)", name, h.limiterNames()), http.StatusNotFound)
		return
	}
	v := r.FormValue("limit")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		http.Error(w, fmt.Sprintf("live: limit must be a whole number >= 1, not %q", v), http.StatusBadRequest)
		return
	}
	l.SetLimit(n)
	writeJSON(w, http.StatusOK, map[string]any{"limiter": name, "limit": l.Limit()})
}

// limiter is the limiter given under name, nil if none.
func (h *Handler) limiter(name string) *pipeline.Limiter {
	for _, l := range h.limiters {
		if l.name == name {
			return l.l
		}
	}
	return nil
}

func (h *Handler) limiterNames() string {
	var b bytes.Buffer
	for i, l := range h.limiters {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", l.name)
	}
	return b.String()
}

// sameOrigin refuses (403) a control request that a page of another
// origin sent, as a browser says with Origin or Sec-Fetch-Site: a page on
// some web site must not be able to stop a job on this machine.
func sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	cross := r.Header.Get("Sec-Fetch-Site") == "cross-site"
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		cross = cross || err != nil || u.Host != r.Host
	} else if o == "null" {
		cross = true
	}
	if cross {
		http.Error(w, "live: a control request from another origin is refused", http.StatusForbidden)
	}
	return !cross
}

func unknownPipeline(w http.ResponseWriter, name string) {
	http.Error(w, fmt.Sprintf("live: no pipeline %q", name), http.StatusNotFound)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
