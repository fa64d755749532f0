package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/live"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bound is how long something that should happen promptly may take before
// a test counts it as hung: a hang detector, not a speed bound.
const bound = 10 * time.Second

// endless counts up until the pipeline stops it.
func endless(yield func(int) bool) {
	for i := 0; yield(i); i++ {
	}
}

// running is a pipeline that runs until stopped: an endless source, a
// stage "slow" that sleeps a little per item, and a Collect on its own
// goroutine. wait returns Collect's result.
func running(t *testing.T, opts ...pipeline.StageOption) (p *pipeline.Pipeline, wait func() ([]int, error)) {
	t.Helper()
	p = pipeline.New(context.Background())
	src := pipeline.FromSeq(p, iter.Seq[int](endless), pipeline.Name("numbers"))
	slow := pipeline.FanOut(p, src, 2, func(_ context.Context, n int) (int, error) {
		time.Sleep(200 * time.Microsecond)
		return n, nil
	}, append([]pipeline.StageOption{pipeline.Name("slow")}, opts...)...)
	type res struct {
		got []int
		err error
	}
	done := make(chan res, 1)
	go func() {
		got, err := pipeline.Collect(p, slow)
		done <- res{got, err}
	}()
	var once atomic.Bool
	var r res
	t.Cleanup(func() {
		if !once.Load() {
			p.Stop()
			<-done
		}
	})
	return p, func() ([]int, error) {
		if once.Swap(true) {
			return r.got, r.err
		}
		select {
		case r = <-done:
		case <-time.After(bound):
			t.Fatal("the pipeline did not end")
		}
		return r.got, r.err
	}
}

func getState(t *testing.T, srv *httptest.Server, query string) live.State {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/state" + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var st live.State
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

func post(t *testing.T, srv *httptest.Server, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(srv.URL+path, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestState(t *testing.T) {
	t.Run("a finished pipeline: its stages, edges, final counts and result nil", func(t *testing.T) {
		p := pipeline.New(context.Background())
		nums := pipeline.Generate(p, 1, 2, 3, 4, 5, 6)
		sq := pipeline.FanOut(p, nums, 3, func(_ context.Context, n int) (int, error) { return n * n, nil }, pipeline.Name("square"))
		odd := pipeline.Filter(p, sq, func(n int) bool { return n%2 == 1 }, pipeline.Name("odd"))
		require.NoError(t, pipeline.Drain(p, odd))

		st := getState(t, serve(t, live.New(live.Watch("squares", p))), "")
		require.Len(t, st.Pipelines, 1)
		ps := st.Pipelines[0]
		assert.Equal(t, "squares", ps.Name)
		assert.True(t, ps.Ended)
		assert.Equal(t, "ended", ps.Status)
		assert.Equal(t, "nil", ps.Result)
		require.Len(t, ps.Stages, 3)
		names := []string{ps.Stages[0].Name, ps.Stages[1].Name, ps.Stages[2].Name}
		assert.Equal(t, []string{"generate#1", "square", "odd"}, names)
		sq3 := ps.Stages[1]
		assert.Equal(t, "fanout", sq3.Kind)
		assert.Equal(t, 3, sq3.Workers)
		assert.Equal(t, 2, sq3.Index)
		assert.EqualValues(t, 6, sq3.In)
		assert.EqualValues(t, 6, sq3.Out)
		assert.Positive(t, sq3.LatencyCount)
		assert.Positive(t, sq3.P99)
		assert.EqualValues(t, 3, ps.Stages[2].Dropped)
		assert.Equal(t, []live.EdgeState{{From: 1, To: 2, Len: 0, Cap: 64}, {From: 2, To: 3, Len: 0, Cap: 64}}, ps.Edges)
		assert.Equal(t, live.Controls{}, st.Controls, "controls are off by default")
		assert.Empty(t, st.Limiters)
	})

	t.Run("a failed pipeline shows the error", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2), 1, func(_ context.Context, n int) (int, error) {
			return 0, io.ErrUnexpectedEOF
		}, pipeline.Name("breaks"))
		require.Error(t, pipeline.Drain(p, out))
		ps := live.New(live.Watch("bad", p)).State().Pipelines[0]
		assert.True(t, ps.Ended)
		assert.Contains(t, ps.Result, "unexpected EOF")
		assert.Contains(t, ps.Result, "breaks")
	})

	t.Run("the result is the one Wait returns, after every Finally hook", func(t *testing.T) {
		p := pipeline.New(context.Background())
		h := live.New(live.Watch("late", p)) // its hook is registered first
		p.Finally(func(error) error { return io.ErrClosedPipe })
		assert.ErrorIs(t, pipeline.Drain(p, pipeline.Generate(p, 1)), io.ErrClosedPipe)
		assert.Equal(t, io.ErrClosedPipe.Error(), h.State().Pipelines[0].Result)
	})

	t.Run("a running pipeline: counts, busy workers, rate and history", func(t *testing.T) {
		p, wait := running(t)
		h := live.New(live.Watch("job", p))
		first := h.State().Pipelines[0]
		assert.Equal(t, "running", first.Status)
		assert.False(t, first.Ended)
		assert.Empty(t, first.Result)
		time.Sleep(1100 * time.Millisecond) // the history keeps one point a second
		second := h.State().Pipelines[0]
		require.Len(t, second.Stages, 2)
		assert.Greater(t, second.Stages[1].In, first.Stages[1].In)
		assert.Positive(t, second.Stages[1].Rate)
		require.Len(t, second.HistoryAt, 1)
		require.Len(t, second.Stages[1].History, 1)
		assert.Positive(t, second.Stages[1].History[0])
		p.Stop()
		_, err := wait()
		require.NoError(t, err)
	})

	t.Run("one pipeline of several, and an unknown one", func(t *testing.T) {
		a, b := pipeline.New(context.Background()), pipeline.New(context.Background())
		require.NoError(t, pipeline.Drain(a, pipeline.Generate(a, 1)))
		require.NoError(t, pipeline.Drain(b, pipeline.Generate(b, 1, 2)))
		h := live.New(live.Watch("a", a))
		require.NoError(t, h.Add("b", b))
		srv := serve(t, h)
		all := getState(t, srv, "")
		require.Len(t, all.Pipelines, 2)
		assert.Equal(t, "b", all.Pipelines[1].Name)
		one := getState(t, srv, "?pipeline=b")
		require.Len(t, one.Pipelines, 1)
		assert.EqualValues(t, 2, one.Pipelines[0].Stages[0].Out)

		for _, path := range []string{"/api/state?pipeline=nope", "/api/events?pipeline=nope"} {
			resp, err := http.Get(srv.URL + path)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
			assert.Contains(t, string(body), `no pipeline "nope"`, path)
		}
	})
}

// events reads Server-Sent Events from r and sends each "state" event's
// data, decoded, on the channel it returns, which closes when r ends.
func events(t *testing.T, r io.Reader) <-chan live.State {
	ch := make(chan live.State)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "state":
				var st live.State
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &st); err != nil {
					t.Errorf("bad event data: %v", err)
					return
				}
				ch <- st
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan live.State) live.State {
	t.Helper()
	select {
	case st, ok := <-ch:
		require.True(t, ok, "the event stream ended")
		return st
	case <-time.After(bound):
		t.Fatal("no event came")
	}
	return live.State{}
}

func TestEvents(t *testing.T) {
	t.Run("events arrive and the counts rise", func(t *testing.T) {
		p, wait := running(t)
		srv := serve(t, live.New(live.Watch("job", p), live.Interval(20*time.Millisecond)))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		ch := events(t, resp.Body)
		first := next(t, ch)
		require.Len(t, first.Pipelines, 1)
		var last live.State
		for range 5 {
			last = next(t, ch)
		}
		require.Len(t, last.Pipelines[0].Stages, 2)
		assert.Greater(t, last.Pipelines[0].Stages[0].Out, first.Pipelines[0].Stages[0].Out)
		assert.True(t, last.Time.After(first.Time))
		cancel()
		for range ch { // the stream ends once the request is cancelled
		}
		p.Stop()
		_, err = wait()
		require.NoError(t, err)
	})

	t.Run("a client that goes away mid-stream ends its handler", func(t *testing.T) {
		p, _ := running(t)
		h := live.New(live.Watch("job", p), live.Interval(time.Millisecond))
		ctx, cancel := context.WithCancel(context.Background())
		w := &flushRecorder{wrote: make(chan struct{}, 1)}
		req := httptest.NewRequest(http.MethodGet, "/api/events", nil).WithContext(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(w, req)
		}()
		select {
		case <-w.wrote:
		case <-time.After(bound):
			t.Fatal("no event written")
		}
		cancel()
		select {
		case <-done:
		case <-time.After(bound):
			t.Fatal("the handler went on after its client left")
		}
	})

	t.Run("through a server, a disconnected client leaves no goroutine", func(t *testing.T) {
		p, wait := running(t)
		srv := httptest.NewServer(live.New(live.Watch("job", p), live.Interval(5*time.Millisecond)))
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		before := goleak.IgnoreCurrent()
		for range 3 {
			ctx, cancel := context.WithCancel(context.Background())
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			ch := events(t, resp.Body)
			next(t, ch)
			next(t, ch)
			cancel()
			for range ch {
			}
			resp.Body.Close()
		}
		// Every stream's handler and connection has gone: only what ran before is left.
		goleak.VerifyNone(t, before)
		srv.Close()
		p.Stop()
		_, err := wait()
		require.NoError(t, err)
	})
}

// flushRecorder is an http.ResponseWriter that flushes, safe to read from
// another goroutine: it only signals that something was written.
type flushRecorder struct {
	h     http.Header
	wrote chan struct{}
}

func (f *flushRecorder) Header() http.Header {
	if f.h == nil {
		f.h = http.Header{}
	}
	return f.h
}
func (f *flushRecorder) WriteHeader(int) {}
func (f *flushRecorder) Flush()          {}
func (f *flushRecorder) Write(b []byte) (int, error) {
	select {
	case f.wrote <- struct{}{}:
	default:
	}
	return len(b), nil
}

func TestControls(t *testing.T) {
	t.Run("off by default: 403, and nothing happens", func(t *testing.T) {
		p, wait := running(t)
		l := pipeline.NewLimiter(2)
		srv := serve(t, live.New(live.Watch("job", p)))
		code, body := post(t, srv, "/api/pipelines/job/stop", nil)
		assert.Equal(t, http.StatusForbidden, code)
		assert.Contains(t, body, "AllowStop")
		code, body = post(t, srv, "/api/limiters/fetch/limit", url.Values{"limit": {"5"}})
		assert.Equal(t, http.StatusForbidden, code)
		assert.Contains(t, body, "ControlLimiter")
		assert.Equal(t, 2, l.Limit())
		st := getState(t, srv, "")
		assert.Equal(t, "running", st.Pipelines[0].Status)
		assert.NoError(t, p.Context().Err())
		p.Stop()
		_, err := wait()
		require.NoError(t, err)
	})

	t.Run("GET on a control is refused", func(t *testing.T) {
		p, _ := running(t)
		srv := serve(t, live.New(live.Watch("job", p), live.AllowStop()))
		resp, err := http.Get(srv.URL + "/api/pipelines/job/stop")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "running", getState(t, srv, "").Pipelines[0].Status)
	})

	t.Run("Stop drains: Wait returns nil and nothing is lost", func(t *testing.T) {
		p, wait := running(t)
		srv := serve(t, live.New(live.Watch("job", p), live.AllowStop()))
		require.Eventually(t, func() bool { return p.Stats()[1].Out > 100 }, bound, time.Millisecond)
		code, body := post(t, srv, "/api/pipelines/job/stop", nil)
		require.Equal(t, http.StatusAccepted, code, body)
		got, err := wait()
		require.NoError(t, err)
		stats := p.Stats()
		assert.EqualValues(t, stats[0].Out, len(got), "every item emitted was collected")
		sort.Ints(got) // two workers: in any order
		for i, v := range got {
			if !assert.Equal(t, i, v) {
				break
			}
		}
		ps := getState(t, srv, "").Pipelines[0]
		assert.Equal(t, "ended", ps.Status)
		assert.Equal(t, "nil", ps.Result)
		assert.EqualValues(t, len(got), ps.Stages[1].Out)
		assert.Zero(t, ps.Stages[1].Rate, "an ended pipeline has no rate")
	})

	t.Run("the limiter control sets the limit", func(t *testing.T) {
		l := pipeline.NewLimiter(1)
		p, wait := running(t, pipeline.Limit(l))
		srv := serve(t, live.New(live.Watch("job", p), live.ControlLimiter("slow", l)))
		st := getState(t, srv, "")
		assert.Equal(t, live.Controls{Limit: true}, st.Controls)
		require.Len(t, st.Limiters, 1)
		assert.Equal(t, "slow", st.Limiters[0].Name)
		assert.Equal(t, 1, st.Limiters[0].Limit)
		code, body := post(t, srv, "/api/limiters/slow/limit", url.Values{"limit": {"7"}})
		require.Equal(t, http.StatusOK, code, body)
		assert.JSONEq(t, `{"limiter":"slow","limit":7}`, body)
		assert.Equal(t, 7, l.Limit())
		st = getState(t, srv, "")
		assert.Equal(t, 7, st.Limiters[0].Limit)
		assert.Equal(t, 7, st.Pipelines[0].Stages[1].Limit)
		p.Stop()
		_, err := wait()
		require.NoError(t, err)
	})

	t.Run("bad input gives a clear 4xx", func(t *testing.T) {
		p, _ := running(t)
		l := pipeline.NewLimiter(3)
		srv := serve(t, live.New(live.Watch("job", p), live.AllowStop(), live.ControlLimiter("fetch", l)))
		cases := []struct {
			path string
			form url.Values
			code int
			says string
		}{
			{"/api/pipelines/nope/stop", nil, http.StatusNotFound, `no pipeline "nope"`},
			{"/api/limiters/nope/limit", url.Values{"limit": {"4"}}, http.StatusNotFound, `no limiter "nope" (the handler controls "fetch")`},
			{"/api/limiters/fetch/limit", url.Values{"limit": {"many"}}, http.StatusBadRequest, `limit must be a whole number >= 1, not "many"`},
			{"/api/limiters/fetch/limit", url.Values{"limit": {"0"}}, http.StatusBadRequest, `not "0"`},
			{"/api/limiters/fetch/limit", url.Values{"limit": {"-3"}}, http.StatusBadRequest, `not "-3"`},
			{"/api/limiters/fetch/limit", nil, http.StatusBadRequest, `not ""`},
		}
		for _, c := range cases {
			code, body := post(t, srv, c.path, c.form)
			assert.Equal(t, c.code, code, c.path)
			assert.Contains(t, body, c.says, c.path)
		}
		assert.Equal(t, 3, l.Limit())
		assert.Equal(t, "running", getState(t, srv, "").Pipelines[0].Status)
	})

	t.Run("a control request from another origin is refused", func(t *testing.T) {
		p, _ := running(t)
		l := pipeline.NewLimiter(3)
		srv := serve(t, live.New(live.Watch("job", p), live.AllowStop(), live.ControlLimiter("fetch", l)))
		for _, hdr := range []http.Header{
			{"Origin": {"http://evil.example"}},
			{"Origin": {"null"}},
			{"Sec-Fetch-Site": {"cross-site"}},
		} {
			for _, path := range []string{"/api/pipelines/job/stop", "/api/limiters/fetch/limit?limit=9"} {
				req, err := http.NewRequest(http.MethodPost, srv.URL+path, nil)
				require.NoError(t, err)
				req.Header = hdr
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %v", path, hdr)
			}
		}
		assert.Equal(t, 3, l.Limit())
		assert.Equal(t, "running", getState(t, srv, "").Pipelines[0].Status)
		// The page's own origin is accepted.
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/limiters/fetch/limit?limit=9", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", srv.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, 9, l.Limit())
	})
}

func TestOptions(t *testing.T) {
	p := pipeline.New(context.Background())
	require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1)))
	for name, h := range map[string]*live.Handler{
		"empty pipeline name":                   live.New(live.Watch("", p)),
		`pipeline "x" is nil`:                   live.New(live.Watch("x", nil)),
		`pipeline "x" added twice`:              live.New(live.Watch("x", p), live.Watch("x", p)),
		"ControlLimiter: empty name":            live.New(live.ControlLimiter("", pipeline.NewLimiter(1))),
		`ControlLimiter("l"): nil limiter`:      live.New(live.ControlLimiter("l", nil)),
		`ControlLimiter("l"): name given twice`: live.New(live.ControlLimiter("l", pipeline.NewLimiter(1)), live.ControlLimiter("l", pipeline.NewLimiter(1))),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, http.StatusInternalServerError, rec.Code, name)
		assert.Contains(t, rec.Body.String(), name)
	}
	h := live.New(live.Watch("x", p), nil, live.Interval(-1))
	assert.Error(t, h.Add("x", p))
	assert.Error(t, h.Add("", p))
	assert.Error(t, h.Add("y", nil))
	assert.NoError(t, h.Add("y", p))
}

func TestPage(t *testing.T) {
	p := pipeline.New(context.Background())
	require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1)))
	srv := serve(t, http.StripPrefix("/live", live.New(live.Watch("x", p))))
	get := func(path string) (string, string, int) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b), resp.Header.Get("Content-Type"), resp.StatusCode
	}
	page, ctype, code := get("/live/")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "text/html; charset=utf-8", ctype)
	assert.Contains(t, page, `<script src="static/app.js">`, "relative, so the handler can be mounted anywhere")
	for path, want := range map[string]string{"/live/static/app.js": "javascript", "/live/static/style.css": "text/css"} {
		body, ctype, code := get(path)
		assert.Equal(t, http.StatusOK, code, path)
		assert.Contains(t, ctype, want, path)
		// Nothing is fetched from elsewhere: no absolute URL but the SVG namespace.
		rest := strings.ReplaceAll(body, "http://www.w3.org/2000/svg", "")
		assert.NotContains(t, rest, "http://", path)
		assert.NotContains(t, rest, "https://", path)
		assert.NotContains(t, rest, "//cdn", path)
	}
	assert.NotContains(t, page, "http")
	_, _, code = get("/live/nothing")
	assert.Equal(t, http.StatusNotFound, code)
}
