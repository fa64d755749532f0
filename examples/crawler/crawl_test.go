package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// exCrawl crawls the named hosts of a fresh site with cfg and closes
// everything afterwards.
func exCrawl(t *testing.T, pages int, delay time.Duration, cfg Config, hosts ...string) (*Site, *Report) {
	t.Helper()
	site := NewSite(pages, delay)
	t.Cleanup(site.Close)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	var seeds []Seed
	for _, name := range hosts {
		h := site.Host(name)
		seeds = append(seeds, Seed{Name: h.Name, URL: h.URL + "/"})
	}
	r, err := Crawl(context.Background(), &http.Client{Transport: transport}, seeds, cfg)
	require.NoError(t, err)
	return site, r
}

// exConfig's timeout is long enough that no answering page times out, even
// on a loaded machine; tests that crawl the slow host shorten it.
var exConfig = Config{PerHost: 2, Total: 4, Every: time.Millisecond, Burst: 4,
	Timeout: 5 * time.Second, Attempts: 3, Backoff: time.Millisecond}

// exShort is exConfig for crawls that include /hang.
var exShort = func() Config { c := exConfig; c.Timeout = 300 * time.Millisecond; return c }()

// exKey names a page or failure by host and path.
func exKey(host, u string) string { return host + " " + path(u) }

func TestCrawl_FetchesEveryLinkedPageOfEveryHost(t *testing.T) {
	_, r := exCrawl(t, 4, time.Millisecond, exShort, "docs", "flaky", "slow")
	var got []string
	for _, p := range r.Pages {
		got = append(got, fmt.Sprintf("%s %d %s", exKey(p.Host, p.URL), p.Status, p.Title))
	}
	assert.Equal(t, []string{
		"docs /p/1 200 docs page 1", "docs /p/2 200 docs page 2", "docs /p/3 200 docs page 3", "docs /p/4 200 docs page 4",
		"flaky /p/1 200 flaky page 1", "flaky /p/2 200 flaky page 2", "flaky /p/3 200 flaky page 3", "flaky /p/4 200 flaky page 4",
		"slow /p/1 200 slow page 1", "slow /p/2 200 slow page 2", "slow /p/3 200 slow page 3", "slow /p/4 200 slow page 4",
	}, got)
}

func TestCrawl_RetriesServerErrorsUntilThePageAnswers(t *testing.T) {
	site, r := exCrawl(t, 6, time.Millisecond, exConfig, "docs", "flaky")
	flaky := site.Host("flaky")
	for _, p := range r.Pages {
		if p.Host != "flaky" {
			assert.Equal(t, 1, p.Attempts, p.URL)
			continue
		}
		var i int
		_, err := fmt.Sscanf(path(p.URL), "/p/%d", &i)
		require.NoError(t, err)
		assert.Equal(t, i%3+1, p.Attempts, "page %d fails %d times first", i, i%3)
		assert.Equal(t, i%3+1, flaky.Requests(path(p.URL)))
	}
	// pages 1,2,4,5 need 1,2,1,2 retries; /down 2
	assert.Equal(t, uint64(8), r.Retries)
}

func TestCrawl_DoesNotRetryAClientError(t *testing.T) {
	site, r := exCrawl(t, 2, time.Millisecond, exConfig, "docs")
	assert.Equal(t, 1, site.Host("docs").Requests("/old"))
	require.Len(t, r.Failures, 1)
	old := r.Failures[0]
	assert.Equal(t, "docs /old", exKey(old.Host, old.URL))
	assert.Equal(t, 1, old.Attempts, "a 404 is Permanent: one attempt")
	assert.True(t, pipeline.IsPermanent(old.Err))
	var status errStatus
	require.ErrorAs(t, old.Err, &status)
	assert.Equal(t, http.StatusNotFound, status.code)
	assert.Zero(t, r.Retries)
}

func TestCrawl_ReportsPagesThatNeverAnswerWithoutFailingTheCrawl(t *testing.T) {
	site, r := exCrawl(t, 2, time.Millisecond, exShort, "flaky", "slow")
	require.Len(t, r.Failures, 2)

	down := r.Failures[0]
	assert.Equal(t, "flaky /down", exKey(down.Host, down.URL))
	assert.Equal(t, 3, down.Attempts)
	assert.False(t, down.TimedOut)
	var status errStatus
	require.ErrorAs(t, down.Err, &status)
	assert.Equal(t, http.StatusServiceUnavailable, status.code)

	hang := r.Failures[1]
	assert.Equal(t, "slow /hang", exKey(hang.Host, hang.URL))
	assert.Equal(t, 3, hang.Attempts)
	assert.True(t, hang.TimedOut)
	assert.ErrorIs(t, hang.Err, context.DeadlineExceeded)
	assert.Equal(t, 3, site.Host("slow").Requests("/hang"), "each attempt reached the server and was abandoned")
}

func TestCrawl_NeverExceedsThePerHostOrTotalLimit(t *testing.T) {
	tests := []struct{ perHost, total int }{{1, 3}, {2, 4}, {3, 2}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("per host %d total %d", tt.perHost, tt.total), func(t *testing.T) {
			cfg := exShort
			cfg.PerHost, cfg.Total = tt.perHost, tt.total
			_, r := exCrawl(t, 8, 5*time.Millisecond, cfg, "docs", "flaky", "slow")
			assert.Len(t, r.Pages, 3*8)
			require.Len(t, r.MaxInFlightPerHost, 3)
			for host, n := range r.MaxInFlightPerHost {
				assert.LessOrEqual(t, n, tt.perHost, host)
				assert.Positive(t, n, host)
			}
			assert.LessOrEqual(t, r.MaxInFlight, tt.total)
		})
	}
}

func TestCrawl_EachHostsLimitAdaptsToHowItAnswers(t *testing.T) {
	cfg := exConfig
	cfg.PerHost, cfg.Total = 4, 12
	_, r := exCrawl(t, 12, 5*time.Millisecond, cfg, "docs", "flaky")
	assert.Zero(t, r.Backoffs["docs"], "docs never fails")
	assert.Greater(t, r.Limit["docs"], 1, "good answers grow the limit from 1")
	assert.Positive(t, r.Backoffs["flaky"], "every 503 backs off")
	for host, n := range r.MaxInFlightPerHost {
		assert.LessOrEqual(t, n, cfg.PerHost, host)
		assert.LessOrEqual(t, r.Limit[host], cfg.PerHost, host)
	}
}

func TestCrawl_SlowAnswersBackOffTheirHost(t *testing.T) {
	// The limit starts at 1: the index, answered at once, must count as
	// fast for the limit to grow, so that the slow pages have something to
	// back off. Its answer includes the first connection, which on a loaded
	// machine has taken more than 5 ms: the threshold leaves it room, and
	// the pages stay four times over it.
	cfg := exConfig
	cfg.PerHost, cfg.Slow = 4, 30*time.Millisecond
	_, r := exCrawl(t, 8, 120*time.Millisecond, cfg, "docs")
	assert.Positive(t, r.Backoffs["docs"], "every page takes 120 ms, over the 30 ms threshold")
	assert.Equal(t, 1, r.Limit["docs"])
}

func TestCrawl_ThrottlesPageRequestsPerHost(t *testing.T) {
	cfg := exConfig
	cfg.Every, cfg.Burst = 40*time.Millisecond, 2
	start := time.Now()
	// flaky's retries are extra requests: they wait for their backoff, not
	// for the throttle, so only hosts that answer first time are crawled.
	site, _ := exCrawl(t, 4, time.Millisecond, cfg, "docs")

	times := site.Host("docs").PageTimes()
	require.Len(t, times, 5) // 4 pages and /old
	// The k-th page request (k from 1) cannot pass the token bucket before
	// (k-burst)·every.
	for k := cfg.Burst + 1; k <= len(times); k++ {
		assert.GreaterOrEqual(t, times[k-1].Sub(start), time.Duration(k-cfg.Burst)*cfg.Every, "request %d", k)
	}
}

func TestCrawl_CancelEndsTheCrawlPromptly(t *testing.T) {
	site := NewSite(4, time.Millisecond)
	defer site.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := exConfig
	cfg.Timeout = time.Hour // only the cancel can end the hanging request
	r, err := Crawl(ctx, &http.Client{Transport: transport}, []Seed{{"slow", site.Host("slow").URL + "/"}}, cfg)
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, r.Pages)
}

func TestRun_PrintsFetchedRetriedAndTimedOut(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-pages", "3", "-delay", "1ms", "-every", "1ms",
		"-timeout", "300ms", "-diagram"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "fetched 9 pages (2 after retries), 3 failed (1 timed out), 7 retries in ")
	assert.Contains(t, out, "docs  /old     failed: 404 Not Found\n")
	assert.Contains(t, out, "flaky /p/2     200   294 B  flaky page 2 (3 attempts)\n")
	assert.Contains(t, out, "flaky /down    failed (3 attempts): 503 Service Unavailable\n")
	assert.Contains(t, out, "slow  /hang    timed out (3 attempts): ")
	assert.Contains(t, out, "```mermaid\nflowchart LR\n")
	assert.Contains(t, out, "<b>fetch slow</b>")
}

func TestRun_RejectsStrayArguments(t *testing.T) {
	err := run(context.Background(), []string{"http://example.com"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "unexpected arguments"), err.Error())
	assert.False(t, errors.Is(err, context.Canceled))
}
