package browser_test

import (
	"context"
	"iter"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/live"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bound is how long something that should happen promptly may take before
// a test counts it as hung: a hang detector, not a speed bound.
const bound = 20 * time.Second

// chromium finds the browser, or skips the test saying how to install it;
// under CI=true a missing browser fails the test instead.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const how = "no Chromium found on PATH: install it with `apt-get install chromium` (Debian's package) to run the browser tests"
	if os.Getenv("CI") == "true" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// browser is a headless Chromium with no network but loopback: every
// proxied request goes to a closed port and every host name but 127.0.0.1
// fails to resolve. It records the URL of every request the page makes.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.WindowSize(1400, 720),
		chromedp.ProxyServer("http://127.0.0.1:9"), // nothing listens there
		chromedp.Flag("proxy-bypass-list", "127.0.0.1"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// Listen starts the browser (network events are on from the start).
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	}), "starting Chromium at %s", path)
	return b
}

// run runs actions with a bound.
func (b *browser) run(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, bound)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// eval evaluates a JavaScript expression into *v.
func eval[T any](t *testing.T, b *browser, expr string, v *T, opts ...chromedp.EvaluateOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, bound)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	require.NoError(t, err, expr)
	*v = got
}

// await polls a JavaScript condition until it is true.
func (b *browser) await(t *testing.T, cond string) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		var ok bool
		eval(t, b, "!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed %s", cond)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// onlyLoopback checks that every request the page made went to the test
// server (or was a data: URL): nothing left the machine.
func (b *browser) onlyLoopback(t *testing.T, server string) {
	t.Helper()
	host := strings.TrimPrefix(server, "http://")
	b.mu.Lock()
	defer b.mu.Unlock()
	require.NotEmpty(t, b.urls, "no request recorded")
	for _, raw := range b.urls {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		if u.Scheme == "data" {
			continue
		}
		assert.Equal(t, host, u.Host, "a request left the test server: %s", raw)
	}
}

// screenshot writes a PNG of the page to $LIVE_SCREENSHOT_DIR (or the
// test's temporary directory) and logs where.
func (b *browser) screenshot(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("LIVE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(b.ctx, bound)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.Greater(t, len(png), 1000)
	require.Equal(t, "\x89PNG", string(png[:4]))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
	return path
}

type node struct {
	Name, Kind          string
	Workers             int
	In, Out, Busy       float64
	Rate                float64
	Bottleneck, Classed bool
	Text                string
}

// nodes reads the stages the page draws for pipeline name.
func (b *browser) nodes(t *testing.T, name string) []node {
	t.Helper()
	var ns []node
	eval(t, b, `[...document.querySelectorAll('section[data-pipeline="`+name+`"] g.node')].map(g => ({
		Name: g.dataset.name, Kind: g.dataset.kind, Workers: +g.dataset.workers,
		In: +g.dataset.in, Out: +g.dataset.out, Busy: +g.dataset.busy, Rate: +g.dataset.rate,
		Bottleneck: g.dataset.bottleneck === "true", Classed: g.classList.contains("bottleneck"),
		Text: g.textContent }))`, &ns)
	return ns
}

func byName(ns []node) map[string]node {
	m := map[string]node{}
	for _, n := range ns {
		m[n.Name] = n
	}
	return m
}

func endless(yield func(int) bool) {
	for i := 0; yield(i); i++ {
	}
}

// job is a running pipeline of four stages, the third of which ("slowest")
// sleeps per item and so limits the rest: numbers → double → slowest →
// keep, collected on its own goroutine. wait returns what was collected.
func job(t *testing.T, slowestOpts ...pipeline.StageOption) (p *pipeline.Pipeline, wait func() ([]int, error)) {
	t.Helper()
	p = pipeline.New(context.Background(), pipeline.DefaultBuffer(16))
	nums := pipeline.FromSeq(p, iter.Seq[int](endless), pipeline.Name("numbers"))
	double := pipeline.FanOut(p, nums, 2, func(_ context.Context, n int) (int, error) { return 2 * n, nil }, pipeline.Name("double"))
	slowest := pipeline.FanOut(p, double, 4, func(_ context.Context, n int) (int, error) {
		time.Sleep(2 * time.Millisecond)
		return n / 2, nil
	}, append([]pipeline.StageOption{pipeline.Name("slowest")}, slowestOpts...)...)
	keep := pipeline.Filter(p, slowest, func(int) bool { return true }, pipeline.Name("keep"))
	type res struct {
		got []int
		err error
	}
	done := make(chan res, 1)
	go func() {
		got, err := pipeline.Collect(p, keep)
		done <- res{got, err}
	}()
	var once sync.Once
	var r res
	get := func() ([]int, error) {
		once.Do(func() {
			select {
			case r = <-done:
			case <-time.After(bound):
				t.Fatal("the pipeline did not end")
			}
		})
		return r.got, r.err
	}
	t.Cleanup(func() {
		p.Stop()
		_, _ = get()
	})
	return p, get
}

// lossless checks that got holds every number the source emitted, once.
func lossless(t *testing.T, p *pipeline.Pipeline, got []int) {
	t.Helper()
	emitted := p.Stats()[0].Out
	require.EqualValues(t, emitted, len(got), "every item emitted reached the sink")
	sort.Ints(got)
	for i, v := range got {
		if !assert.Equal(t, i, v, "item %d", i) {
			return
		}
	}
}

func TestLiveView(t *testing.T) {
	p, wait := job(t)
	srv := httptest.NewServer(live.New(live.Watch("job", p)))
	t.Cleanup(srv.Close) // after the browser has gone (cleanups run last first): its event stream holds the server open
	b := newBrowser(t)
	b.run(t, chromedp.Navigate(srv.URL+"/"))
	b.await(t, `document.querySelectorAll('section[data-pipeline="job"] g.node').length === 4`)

	first := b.nodes(t, "job")
	names := []string{}
	for _, n := range first {
		names = append(names, n.Name)
	}
	assert.Equal(t, []string{"numbers", "double", "slowest", "keep"}, names, "one node per stage, in order")
	m := byName(first)
	assert.Equal(t, "fanout", m["slowest"].Kind)
	assert.Equal(t, 4, m["slowest"].Workers)
	assert.Contains(t, m["slowest"].Text, "4 workers")
	var edges int
	eval(t, b, `document.querySelectorAll('section[data-pipeline="job"] g.edge').length`, &edges)
	assert.Equal(t, 3, edges)

	// Counts rise between two reads of the page.
	b.await(t, `+document.body.dataset.updates > 3`)
	time.Sleep(500 * time.Millisecond)
	second := byName(b.nodes(t, "job"))
	for _, name := range names {
		assert.Greater(t, second[name].In, m[name].In, "%s: in rises", name)
	}
	assert.Contains(t, second["slowest"].Text, "p50 ")

	// The stage that sleeps is the bottleneck, and the page marks it.
	b.await(t, `document.querySelector('section[data-pipeline="job"] g.node.bottleneck[data-name="slowest"]')`)
	marked := byName(b.nodes(t, "job"))
	for _, n := range marked {
		assert.Equal(t, n.Name == "slowest", n.Bottleneck, n.Name)
		assert.Equal(t, n.Name == "slowest", n.Classed, n.Name)
	}
	assert.Contains(t, marked["slowest"].Text, "◆ bottleneck")
	// The rate chart has a point once the history has two samples.
	b.await(t, `document.querySelector('section[data-pipeline="job"] g.node[data-name="slowest"] polyline.spark')`)
	var stopButtons int
	eval(t, b, `document.querySelectorAll('button[data-action="stop"]:not([hidden])').length`, &stopButtons)
	assert.Zero(t, stopButtons, "no Stop control unless it is turned on")

	b.screenshot(t, "live.png")
	b.onlyLoopback(t, srv.URL)
	p.Stop()
	got, err := wait()
	require.NoError(t, err)
	lossless(t, p, got)
}

func TestStopControl(t *testing.T) {
	p, wait := job(t)
	srv := httptest.NewServer(live.New(live.Watch("job", p), live.AllowStop()))
	t.Cleanup(srv.Close) // after the browser has gone (cleanups run last first): its event stream holds the server open
	b := newBrowser(t)
	b.run(t, chromedp.Navigate(srv.URL+"/"))
	b.await(t, `document.querySelectorAll('section[data-pipeline="job"] g.node').length === 4`)
	b.await(t, `+document.querySelector('g.node[data-name="keep"]').dataset.in > 50`)

	stop := `section[data-pipeline="job"] button[data-action="stop"]`
	b.run(t, chromedp.WaitVisible(chromedp.CSS(stop)), chromedp.Click(chromedp.CSS(stop)))
	var armed string
	eval(t, b, `document.querySelector('`+stop+`').textContent`, &armed)
	assert.Equal(t, "Click again to stop", armed, "the first click only arms the button")
	assert.NoError(t, p.Context().Err())
	b.run(t, chromedp.Click(chromedp.CSS(stop)))

	got, err := wait()
	require.NoError(t, err, "a Stop from the page drains: Wait returns nil")
	lossless(t, p, got)
	b.await(t, `document.querySelector('section[data-pipeline="job"]').dataset.status === "ended"`)
	var result string
	eval(t, b, `document.querySelector('section[data-pipeline="job"] .result').textContent`, &result)
	assert.Equal(t, "result: nil", result)
	final := byName(b.nodes(t, "job"))
	assert.EqualValues(t, len(got), final["keep"].Out, "the page shows the final counts")
	b.screenshot(t, "live-stopped.png")
	b.onlyLoopback(t, srv.URL)
}

func TestLimiterControl(t *testing.T) {
	l := pipeline.NewLimiter(1)
	p, wait := job(t, pipeline.Limit(l))
	srv := httptest.NewServer(live.New(live.Watch("job", p), live.ControlLimiter("slowest", l)))
	t.Cleanup(srv.Close) // after the browser has gone (cleanups run last first): its event stream holds the server open
	b := newBrowser(t)
	b.run(t, chromedp.Navigate(srv.URL+"/"))
	row := `.limiter[data-limiter="slowest"]`
	b.await(t, `document.querySelector('`+row+`') && document.querySelector('`+row+`').dataset.limit === "1"`)
	assert.LessOrEqual(t, l.InFlight(), 1)

	b.run(t,
		chromedp.SetValue(chromedp.CSS(row+` input`), "4"),
		chromedp.Click(chromedp.CSS(row+` button[data-action="set-limit"]`)),
	)
	b.await(t, `document.querySelector('`+row+`').dataset.limit === "4"`)
	assert.Equal(t, 4, l.Limit())
	// The limit takes effect: more than one call of the stage runs at once.
	require.Eventually(t, func() bool { return l.InFlight() > 1 }, bound, time.Millisecond)
	b.await(t, `+document.querySelector('g.node[data-name="slowest"]').dataset.busy > 1`)

	// A bad value is refused, and the page says why.
	b.run(t,
		chromedp.SetValue(chromedp.CSS(row+` input`), "0"),
		chromedp.Click(chromedp.CSS(row+` button[data-action="set-limit"]`)),
	)
	b.await(t, `document.querySelector('`+row+` .msg').textContent.includes("limit must be a whole number")`)
	assert.Equal(t, 4, l.Limit())
	b.onlyLoopback(t, srv.URL)
	p.Stop()
	got, err := wait()
	require.NoError(t, err)
	lossless(t, p, got)
}

// TestOffline: with no network at all but loopback, the page loads and
// draws; every request it made went to the server on 127.0.0.1, and a
// request to anywhere else fails.
func TestOffline(t *testing.T) {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 1, func(_ context.Context, n int) (int, error) { return n, nil }, pipeline.Name("one"))
	require.NoError(t, pipeline.Drain(p, out))
	srv := httptest.NewServer(live.New(live.Watch("done", p)))
	t.Cleanup(srv.Close) // after the browser has gone (cleanups run last first): its event stream holds the server open
	b := newBrowser(t)
	b.run(t, chromedp.Navigate(srv.URL+"/"))
	b.await(t, `document.querySelectorAll('section[data-pipeline="done"] g.node').length === 2`)
	var styled string
	eval(t, b, `getComputedStyle(document.querySelector('section.pipeline')).borderTopStyle`, &styled)
	assert.Equal(t, "solid", styled, "the stylesheet loaded")
	var result string
	eval(t, b, `document.querySelector('section[data-pipeline="done"] .result').textContent`, &result)
	assert.Equal(t, "result: nil", result, "a finished pipeline shows its result")

	// The browser really has no way out: a fetch elsewhere fails.
	var outside string
	eval(t, b, `fetch("http://example.com/").then(() => "reached", () => "failed")`, &outside, chromedp.EvalAwaitPromise)
	assert.Equal(t, "failed", outside)
	b.mu.Lock()
	b.urls = slicesWithout(b.urls, "http://example.com/")
	b.mu.Unlock()
	b.onlyLoopback(t, srv.URL)
}

func slicesWithout(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
