package metricsrv_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/examples/internal/metricsrv"
	"github.com/ec0f1147/pipeline/prom"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAddr(t *testing.T) {
	assert.Equal(t, "127.0.0.1:9090", metricsrv.Addr(":9090"))
	assert.Equal(t, "127.0.0.1:9090", metricsrv.Addr("9090"))
	assert.Equal(t, "0.0.0.0:9090", metricsrv.Addr("0.0.0.0:9090"), "a host given is kept")
}

func TestServe(t *testing.T) {
	p := pipeline.New(context.Background())
	require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1, 2, 3)))
	url, stop, err := metricsrv.Serve(":0", prom.NewCollector(p, "t"))
	require.NoError(t, err)
	defer stop()
	assert.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	assert.Contains(t, string(body), `pipeline_stage_items_out_total{kind="generate",pipeline="t",stage="generate#1"} 3`)
}

func TestServeHandler(t *testing.T) {
	streaming := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" { // an endless response, as an event stream is
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			close(streaming)
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, "hello")
	})
	url, stop, err := metricsrv.ServeHandler(":0", h)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	assert.True(t, strings.HasSuffix(url, "/"), url)
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	assert.Equal(t, "hello", string(body))

	stream, err := http.Get(url + "stream")
	require.NoError(t, err)
	<-streaming
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped: // the open stream did not hold stop up
	case <-time.After(10 * time.Second):
		t.Fatal("stop waited for an open stream")
	}
	_, _ = io.Copy(io.Discard, stream.Body)
	require.NoError(t, stream.Body.Close())

	_, _, err = metricsrv.ServeHandler("256.0.0.1:0", h)
	assert.Error(t, err)
}
