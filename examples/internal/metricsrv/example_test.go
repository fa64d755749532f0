package metricsrv_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/examples/internal/metricsrv"
	"github.com/ec0f1147/pipeline/prom"
)

func ExampleServe() {
	p := pipeline.New(context.Background())
	if err := pipeline.Drain(p, pipeline.Generate(p, 1, 2)); err != nil {
		fmt.Println(err)
	}
	url, stop, err := metricsrv.Serve(":0", prom.NewCollector(p, "job"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	resp, err := http.Get(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(strings.HasSuffix(url, "/metrics"))
	fmt.Println(strings.Contains(string(body), `pipeline_stage_items_out_total{kind="generate",pipeline="job",stage="generate#1"} 2`))
	// Output:
	// true
	// true
}

func ExampleAddr() {
	fmt.Println(metricsrv.Addr(":8080"))
	fmt.Println(metricsrv.Addr("8080"))
	fmt.Println(metricsrv.Addr("0.0.0.0:8080"))
	// Output:
	// 127.0.0.1:8080
	// 127.0.0.1:8080
	// 0.0.0.0:8080
}

func ExampleServeHandler() {
	url, stop, err := metricsrv.ServeHandler(":0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from "+r.URL.Path)
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	resp, err := http.Get(url + "page")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(strings.HasPrefix(url, "http://127.0.0.1:"), string(body))
	// Output: true hello from /page
}
