package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Site is the crawler's little world: three web servers on the loopback
// interface, each a "host" with an index page linking to its pages.
//
//   - docs answers every page at once (and /old with 404 Not Found);
//   - flaky answers page i with 503 Service Unavailable for its first i%3
//     requests, then 200, and /down with 503 always;
//   - slow answers its pages at once, but /hang never answers: it holds the
//     request until the client gives up.
//
// Every page but an index takes a while to serve.
// Every server counts its requests and records when page requests arrive.
type Site struct {
	Hosts []*Host
	quit  chan struct{}
}

// Host is one server of the site.
type Host struct {
	Name   string
	URL    string // http://127.0.0.1:port
	server *httptest.Server
	site   *Site

	mu       sync.Mutex
	requests map[string]int // path → requests so far
	times    []time.Time    // arrival time of every page request (not the index)
}

// NewSite starts the three servers with pages pages each; a page (not an
// index) takes delay to serve.
func NewSite(pages int, delay time.Duration) *Site {
	s := &Site{quit: make(chan struct{})}
	for _, name := range []string{"docs", "flaky", "slow"} {
		h := &Host{Name: name, site: s, requests: map[string]int{}}
		h.server = httptest.NewServer(h.handler(pages, delay))
		h.URL = h.server.URL
		s.Hosts = append(s.Hosts, h)
	}
	return s
}

// Close releases any hanging request and shuts every server down.
func (s *Site) Close() {
	close(s.quit)
	for _, h := range s.Hosts {
		h.server.Close()
	}
}

// Host returns the host named name, or nil.
func (s *Site) Host(name string) *Host {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Requests is how many requests path received.
func (h *Host) Requests(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests[path]
}

// PageTimes returns when each page request (all but the index) arrived.
func (h *Host) PageTimes() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.times...)
}

func (h *Host) handler(pages int, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests[r.URL.Path]++
		n := h.requests[r.URL.Path]
		if r.URL.Path != "/" {
			h.times = append(h.times, time.Now())
		}
		h.mu.Unlock()

		if r.URL.Path != "/" {
			select { // the server's work
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		switch path := r.URL.Path; {
		case path == "/":
			h.index(w, pages)
		case path == "/old" && h.Name == "docs":
			http.NotFound(w, r)
		case path == "/down" && h.Name == "flaky":
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		case path == "/hang" && h.Name == "slow":
			select { // never answers: waits for the client to give up
			case <-r.Context().Done():
			case <-h.site.quit:
			}
		case strings.HasPrefix(path, "/p/"):
			i, err := strconv.Atoi(strings.TrimPrefix(path, "/p/"))
			if err != nil || i < 1 || i > pages {
				http.NotFound(w, r)
				return
			}
			if h.Name == "flaky" && n <= i%3 {
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintf(w, "<html><title>%s page %d</title><body>%s</body></html>\n",
				h.Name, i, strings.Repeat("lorem ipsum ", 10*i))
		default:
			http.NotFound(w, r)
		}
	})
}

// index lists the host's links, one anchor per line.
func (h *Host) index(w http.ResponseWriter, pages int) {
	fmt.Fprintf(w, "<html><title>%s</title><body>\n", h.Name)
	for i := 1; i <= pages; i++ {
		fmt.Fprintf(w, "<a href=\"/p/%d\">page %d</a>\n", i, i)
	}
	extra := map[string]string{"docs": "/old", "flaky": "/down", "slow": "/hang"}[h.Name]
	fmt.Fprintf(w, "<a href=\"%s\">%s</a>\n</body></html>\n", extra, extra)
}
