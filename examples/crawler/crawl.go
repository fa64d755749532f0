package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

// Seed is a host to crawl: its index page lists the pages to fetch.
type Seed struct {
	Name string // shown in the report and the stage names
	URL  string // the index page
}

// Config is the crawler's politeness and patience.
type Config struct {
	PerHost  int           // most requests in flight per host, the index included
	Slow     time.Duration // a request slower than this counts against its host, as a failure does; 0: only failures
	Total    int           // requests in flight over all hosts
	Every    time.Duration // after Burst pages, one page request per host per Every
	Burst    int
	Timeout  time.Duration // per attempt
	Attempts int           // attempts per page, the first included
	Backoff  time.Duration // wait before each retry
}

// Page is a page that answered.
type Page struct {
	Host, URL string
	Status    int
	Bytes     int
	Title     string
	Attempts  int
}

// Failure is a page that never answered: it failed or timed out on every
// attempt, or answered with a client error (4xx), which is not retried.
type Failure struct {
	Host, URL string
	Attempts  int
	TimedOut  bool
	Err       error
}

// Report is what a crawl did, sorted by host then URL.
type Report struct {
	Pages    []Page
	Failures []Failure
	Retries  uint64 // re-runs of a failed attempt, over every stage
	// MaxInFlight is the most requests the crawler had open at once over
	// all hosts, and MaxInFlightPerHost per host name: from sending a
	// request to closing its response body.
	MaxInFlight        int
	MaxInFlightPerHost map[string]int
	// Limit is where each host's adaptive limiter ended, by host name, and
	// Backoffs how many times it lowered its limit after a failure or a
	// slow request (of its last 32 adjustments).
	Limit, Backoffs map[string]int
	Elapsed         time.Duration
	Diagram         string
}

// crawler is one crawl's shared state.
type crawler struct {
	client  *http.Client
	seeds   []Seed
	hostIdx map[string]int // URL host → index in seeds

	mu       sync.Mutex
	attempts map[string]int
	failures []Failure
}

// Crawl fetches every seed's index page, then every page it links to on
// the same host. Each host has its own adaptive limiter, held by the index
// fetch and the page fetches alike, and its own Throttle. The limiter
// (AIMD) starts at one request at a time, grows by about one per round of
// good answers and backs off when the host fails (a 5xx, a timeout) or,
// with cfg.Slow, answers slowly, never beyond cfg.PerHost; each host's
// fetch stage has cfg.PerHost workers, of which those above the limit wait;
// every request also holds a slot of one limiter of cfg.Total slots shared
// by all hosts. Each attempt has cfg.Timeout; a failed attempt (an error,
// a timeout or a 5xx) is retried up to cfg.Attempts in all, but a 4xx is
// not (it is pipeline.Permanent); a page that still fails goes to the
// crawl's dead letters and is reported, not fatal. The throttle paces the
// first attempt at each page; a retry waits for cfg.Backoff.
func Crawl(ctx context.Context, client *http.Client, seeds []Seed, cfg Config) (*Report, error) {
	start := time.Now()
	m := &meter{next: client.Transport, perHost: map[string]*gauge{}}
	metered := *client
	metered.Transport = m
	c := &crawler{client: &metered, seeds: seeds, hostIdx: map[string]int{}, attempts: map[string]int{}}
	perHost := make([]*pipeline.Limiter, len(seeds))
	for i, s := range seeds {
		u, err := url.Parse(s.URL)
		if err != nil {
			return nil, err
		}
		c.hostIdx[u.Host] = i
		// A page that does not exist (a Permanent error) says nothing of
		// the host's load: only other failures back its limit off.
		perHost[i] = pipeline.NewAdaptiveLimiter(1, cfg.PerHost, pipeline.AIMD{Threshold: cfg.Slow, Backoff: 0.5,
			Failure: func(err error) bool { return !pipeline.IsPermanent(err) }})
	}
	total := pipeline.NewLimiter(cfg.Total)
	one := func(string) int { return 1 }
	retry := pipeline.Retry(cfg.Attempts, func(int) time.Duration { return cfg.Backoff })

	p := pipeline.New(ctx)
	// The pages (and index pages) that keep failing go to dead letters,
	// typed by what failed, each with its error and attempts.
	deadPages, deadIndexes := pipeline.NewDeadLetters[string](p, 0), pipeline.NewDeadLetters[Seed](p, 0)
	reported := make(chan struct{}, 2)
	go func() {
		for l := range deadPages.Out() {
			c.failed(l.Item, l.Err, l.Attempts)
		}
		reported <- struct{}{}
	}()
	go func() {
		for l := range deadIndexes.Out() {
			c.failed(l.Item.URL, l.Err, l.Attempts)
		}
		reported <- struct{}{}
	}()
	indexes := pipeline.Generate(p, seeds...)
	links := pipeline.FlatMap(p, indexes, len(seeds), func(ctx context.Context, s Seed, emit func(string) error) error {
		get := pipeline.Weighted(perHost[c.hostIdx[hostOf(s.URL)]], one, c.get)
		page, err := get(ctx, s.URL)
		if err != nil {
			return err
		}
		for _, link := range page.links {
			if err := emit(link); err != nil {
				return err
			}
		}
		return nil
	}, pipeline.Name("index"), pipeline.Limit(total), pipeline.Timeout(cfg.Timeout), retry,
		deadIndexes.Option())

	byHost := pipeline.Partition(p, links, len(seeds), func(u string) int { return c.hostIdx[hostOf(u)] })
	fetched := make([]<-chan Page, len(seeds))
	for i, s := range seeds {
		polite := pipeline.Throttle(p, byHost[i], cfg.Every, cfg.Burst, pipeline.Name("throttle "+s.Name))
		fetch := pipeline.Weighted(perHost[i], one, func(ctx context.Context, u string) (Page, error) {
			pg, err := c.get(ctx, u)
			return pg.Page, err
		})
		fetched[i] = pipeline.FanOut(p, polite, cfg.PerHost, fetch, pipeline.Name("fetch "+s.Name),
			pipeline.Limit(total), pipeline.Timeout(cfg.Timeout), retry, deadPages.Option())
	}
	pages, err := pipeline.Collect(p, pipeline.Merge(p, fetched...))
	<-reported // the dead letters are closed once the pipeline has ended
	<-reported

	r := &Report{Elapsed: time.Since(start), Diagram: p.Diagram(),
		MaxInFlight: m.total.max, MaxInFlightPerHost: map[string]int{},
		Limit: map[string]int{}, Backoffs: map[string]int{}}
	for host, g := range m.perHost {
		r.MaxInFlightPerHost[c.name("http://"+host)] = g.max
	}
	for i, s := range seeds {
		r.Limit[s.Name] = perHost[i].Limit()
		for _, a := range perHost[i].Adjustments() {
			if a.Reason == "failure" || a.Reason == "latency" {
				r.Backoffs[s.Name]++
			}
		}
	}
	for _, st := range p.Stats() {
		r.Retries += st.Retries
	}
	c.mu.Lock()
	for _, pg := range pages {
		pg.Attempts = c.attempts[pg.URL]
		r.Pages = append(r.Pages, pg)
	}
	r.Failures = append(r.Failures, c.failures...)
	c.mu.Unlock()
	sort.Slice(r.Pages, func(i, j int) bool { return less(r.Pages[i].Host, r.Pages[i].URL, r.Pages[j].Host, r.Pages[j].URL) })
	sort.Slice(r.Failures, func(i, j int) bool {
		return less(r.Failures[i].Host, r.Failures[i].URL, r.Failures[j].Host, r.Failures[j].URL)
	})
	return r, err
}

func less(h1, u1, h2, u2 string) bool {
	if h1 != h2 {
		return h1 < h2
	}
	return u1 < u2
}

// errStatus is an HTTP error status: a server error (5xx), worth retrying,
// or a client error (4xx), returned as pipeline.Permanent.
type errStatus struct{ code int }

func (e errStatus) Error() string { return fmt.Sprintf("%d %s", e.code, http.StatusText(e.code)) }

// fetched is a page and the same-host links it holds.
type fetched struct {
	Page
	links []string
}

var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

// get makes one attempt at u. A 5xx status is an error (so Retry re-runs
// it); a 4xx is a Permanent error (no retry can cure a 404); any other
// status is an answer.
func (c *crawler) get(ctx context.Context, u string) (fetched, error) {
	c.mu.Lock()
	c.attempts[u]++
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fetched{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fetched{}, err
	}
	if resp.StatusCode >= 500 {
		return fetched{}, errStatus{resp.StatusCode}
	}
	if resp.StatusCode >= 400 {
		return fetched{}, pipeline.Permanent(errStatus{resp.StatusCode})
	}
	f := fetched{Page: Page{Host: c.name(u), URL: u, Status: resp.StatusCode, Bytes: len(body)}}
	if m := titleRE.FindSubmatch(body); m != nil {
		f.Title = string(m[1])
	}
	base := resp.Request.URL
	seen := map[string]bool{}
	for _, m := range hrefRE.FindAllSubmatch(body, -1) {
		ref, err := base.Parse(string(m[1]))
		if err != nil || ref.Host != base.Host || seen[ref.String()] {
			continue // only this host's pages, each once
		}
		seen[ref.String()] = true
		f.links = append(f.links, ref.String())
	}
	return f, nil
}

var titleRE = regexp.MustCompile(`<title>([^<]*)</title>`)

// failed records a page whose dead letter says it failed its last attempt.
func (c *crawler) failed(u string, err error, attempts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, Failure{
		Host:     c.name(u),
		URL:      u,
		Attempts: attempts,
		TimedOut: errors.Is(err, context.DeadlineExceeded),
		Err:      err,
	})
}

func (c *crawler) name(u string) string {
	if i, ok := c.hostIdx[hostOf(u)]; ok {
		return c.seeds[i].Name
	}
	return hostOf(u)
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// meter is an http.RoundTripper that measures how many requests are open at
// once, over all hosts and per host: a request is open from RoundTrip until
// its response body is closed (or RoundTrip fails).
type meter struct {
	next    http.RoundTripper
	mu      sync.Mutex
	total   gauge
	perHost map[string]*gauge
}

type gauge struct{ cur, max int }

func (g *gauge) add(d int) {
	g.cur += d
	g.max = max(g.max, g.cur)
}

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	m.count(req.URL.Host, 1)
	next := m.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		m.count(req.URL.Host, -1)
		return nil, err
	}
	resp.Body = &meteredBody{ReadCloser: resp.Body, done: sync.OnceFunc(func() { m.count(req.URL.Host, -1) })}
	return resp, nil
}

func (m *meter) count(host string, d int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.perHost[host]
	if g == nil {
		g = &gauge{}
		m.perHost[host] = g
	}
	g.add(d)
	m.total.add(d)
}

type meteredBody struct {
	io.ReadCloser
	done func()
}

func (b *meteredBody) Close() error {
	defer b.done()
	return b.ReadCloser.Close()
}
