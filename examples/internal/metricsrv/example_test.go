package metricsrv_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ec0f1147/pipeline/examples/internal/metricsrv"
)

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
