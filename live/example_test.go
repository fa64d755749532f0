package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/live"
)

// finished is a small pipeline that has run to its end.
func finished() *pipeline.Pipeline {
	p := pipeline.New(context.Background())
	sq := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2, func(_ context.Context, n int) (int, error) {
		return n * n, nil
	}, pipeline.Name("square"))
	if err := pipeline.Drain(p, sq); err != nil {
		fmt.Println(err)
	}
	return p
}

// New makes the handler; serve it on 127.0.0.1 and open its page in a
// browser. Here a test server stands in, and the JSON endpoint is read.
func ExampleNew() {
	h := live.New(live.Watch("squares", finished()))
	srv := httptest.NewServer(h) // in a program: http.ListenAndServe("127.0.0.1:8080", h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/state")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var st live.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range st.Pipelines {
		fmt.Println(p.Name, p.Status, "result:", p.Result)
		for _, s := range p.Stages {
			fmt.Printf("  %s (%s, %d workers): in %d, out %d\n", s.Name, s.Kind, s.Workers, s.In, s.Out)
		}
		for _, e := range p.Edges {
			fmt.Printf("  %d -> %d (%d/%d)\n", e.From, e.To, e.Len, e.Cap)
		}
	}
	// Output:
	// squares ended result: nil
	//   generate#1 (generate, 1 workers): in 3, out 3
	//   square (fanout, 2 workers): in 3, out 3
	//   1 -> 2 (0/64)
}

// Watch names the pipelines the page shows; several may be watched.
func ExampleWatch() {
	h := live.New(live.Watch("first", finished()), live.Watch("second", finished()))
	for _, p := range h.State().Pipelines {
		fmt.Println(p.Name, len(p.Stages), "stages")
	}
	// Output:
	// first 2 stages
	// second 2 stages
}

// Add watches a pipeline made after the handler: a program that runs one
// pipeline after another adds each.
func ExampleHandler_Add() {
	h := live.New()
	fmt.Println(len(h.State().Pipelines))
	if err := h.Add("later", finished()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(h.Add("later", finished()))
	fmt.Println(h.State().Pipelines[0].Name)
	// Output:
	// 0
	// live: pipeline "later" added twice
	// later
}

// State is what the JSON endpoint serves, for a program that wants it
// without HTTP.
func ExampleHandler_State() {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2), 1, func(_ context.Context, n int) (int, error) {
		return 0, fmt.Errorf("item %d: no", n)
	}, pipeline.Name("fails"))
	_ = pipeline.Drain(p, out)
	ps := live.New(live.Watch("job", p)).State().Pipelines[0]
	fmt.Println(ps.Status, ps.Ended)
	fmt.Println(ps.Result)
	// Output:
	// ended true
	// pipeline: stage fails: item 1: no
}

// ServeHTTP serves the page, its assets, the state and the controls; it
// can be mounted under a path ending in a slash.
func ExampleHandler_ServeHTTP() {
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", live.New(live.Watch("job", finished()))))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(strings.Contains(rec.Body.String(), `src="static/app.js"`))
	// Output:
	// 200 text/html; charset=utf-8
	// true
}

// AllowStop turns the Stop control on; without it a stop request is
// refused with 403.
func ExampleAllowStop() {
	p := pipeline.New(context.Background())
	ticks := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return nil // stopped
			}
			time.Sleep(time.Millisecond)
		}
	})
	done := make(chan error, 1)
	go func() { done <- pipeline.Drain(p, ticks) }()

	stop := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/pipelines/ticks/stop", nil))
		return rec.Code
	}
	fmt.Println(stop(live.New(live.Watch("ticks", p))))
	fmt.Println(stop(live.New(live.Watch("ticks", p), live.AllowStop())))
	fmt.Println(<-done)
	// Output:
	// 403
	// 202
	// <nil>
}

// ControlLimiter shows a limiter and lets the page set its limit.
func ExampleControlLimiter() {
	l := pipeline.NewLimiter(2)
	h := live.New(live.ControlLimiter("fetch", l))

	rec := httptest.NewRecorder()
	form := url.Values{"limit": {"5"}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/api/limiters/fetch/limit", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	fmt.Println(l.Limit(), h.State().Limiters[0].Limit)
	// Output:
	// 200 {"limit":5,"limiter":"fetch"}
	// 5 5
}

// Interval sets how often the event stream sends the state.
func ExampleInterval() {
	srv := httptest.NewServer(live.New(live.Watch("job", finished()), live.Interval(10*time.Millisecond)))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	n := 0
	for n < 3 && sc.Scan() {
		if sc.Text() == "event: state" {
			n++
		}
	}
	fmt.Println(resp.Header.Get("Content-Type"), n, "events")
	cancel()
	_, _ = io.Copy(io.Discard, resp.Body)
	// Output:
	// text/event-stream 3 events
}
