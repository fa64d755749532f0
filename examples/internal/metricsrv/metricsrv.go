// Package metricsrv serves Prometheus metrics of pipelines on /metrics, for
// the examples' -metrics flag, and any other handler (the live view of
// -http) by the same code path: an address bound to loopback unless a host
// is given, and a stop that ends every open request.
package metricsrv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Addr completes a -metrics value: a bare port or ":port" is bound to
// 127.0.0.1, so that nothing is exposed beyond the machine unless a host
// is given.
func Addr(flag string) string {
	host, port, err := net.SplitHostPort(flag)
	if err != nil {
		return net.JoinHostPort("127.0.0.1", flag) // a bare port
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Serve serves the collectors on http://addr/metrics (addr completed by
// Addr) until stop is called. It returns the URL it serves.
func Serve(addr string, collectors ...prometheus.Collector) (url string, stop func(), err error) {
	reg := prometheus.NewRegistry()
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return "", nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	base, stop, err := ServeHandler(addr, mux)
	if err != nil {
		return "", nil, err
	}
	return base + "metrics", stop, nil
}

// ServeHandler serves h on http://addr/ (addr completed by Addr) until stop
// is called, and returns that URL. Stop ends the requests still open (an
// event stream never ends by itself) and waits for the server to return.
func ServeHandler(addr string, h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", Addr(addr))
	if err != nil {
		return "", nil, err
	}
	base, endRequests := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed: nothing more to serve
		}
	}()
	return "http://" + ln.Addr().String() + "/", func() {
		endRequests()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}
