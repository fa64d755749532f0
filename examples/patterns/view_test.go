package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline/examples/internal/syncbuf"
	"github.com/ec0f1147/pipeline/live"
)

func TestRun_SlowHTTPShowsEachPatternInTheLiveView(t *testing.T) {
	const pace = 5 * time.Millisecond
	var stdout bytes.Buffer
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-http", ":0", "-slow", "-pace", pace.String(), "-linger", "3s", "worker-pool", "dropping"}, &stdout, &stderr)
	}()
	url, ok := stderr.AwaitAfter("live view: ", 10*time.Second)
	require.True(t, ok, "the live view's address is printed:\n%s", stderr.String())
	assert.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), "a bare :port binds loopback: %s", url)

	var st live.State
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "api/state")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Pipelines) != 2 {
			return false
		}
		return st.Pipelines[0].Ended && st.Pipelines[1].Ended
	}, 20*time.Second, 5*time.Millisecond)
	pool, drop := st.Pipelines[0], st.Pipelines[1]
	assert.Equal(t, "worker-pool", pool.Name, "each pipeline is named after its pattern")
	assert.Equal(t, "dropping", drop.Name)
	assert.Equal(t, "nil", pool.Result)
	require.Len(t, pool.Stages, 2)
	fan := pool.Stages[1]
	assert.Equal(t, "fanout", fan.Kind)
	assert.EqualValues(t, 10, fan.Out)
	// -slow: each worker's calls took at least pace each, one after another.
	perWorker := (fan.In + uint64(fan.Workers) - 1) / uint64(fan.Workers)
	assert.GreaterOrEqual(t, fan.Running, (time.Duration(perWorker) * pace).Seconds())
	var dropped uint64
	for _, s := range drop.Stages {
		dropped += s.Dropped
	}
	assert.Positive(t, dropped, "the dropping pattern drops, and the view counts it")

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after -linger")
	}
	assert.Contains(t, stdout.String(), "squares of 1..10 with 3 workers: [1 4 9 16 25 36 49 64 81 100]", "-slow changes no result")
	_, err := http.Get(url)
	assert.Error(t, err, "the page is no longer served")
}

func TestRun_WithoutFlagsPipelinesAreNotWatched(t *testing.T) {
	var stdout bytes.Buffer
	require.NoError(t, run([]string{"worker-pool"}, &stdout, &bytes.Buffer{}))
	watching.mu.Lock()
	defer watching.mu.Unlock()
	assert.Nil(t, watching.h)
	assert.Zero(t, watching.pace)
}

func TestRun_RejectsBadViewFlags(t *testing.T) {
	assert.ErrorContains(t, run([]string{"-slow", "-pace", "0s", "worker-pool"}, &bytes.Buffer{}, &bytes.Buffer{}), "-pace must be positive")
	assert.ErrorContains(t, run([]string{"-linger", "-1s", "worker-pool"}, &bytes.Buffer{}, &bytes.Buffer{}), "-linger must not be negative")
	assert.Error(t, run([]string{"-http", "256.0.0.1:0", "worker-pool"}, &bytes.Buffer{}, &bytes.Buffer{}), "an address that cannot be bound fails the run")
}
