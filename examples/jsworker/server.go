package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startServer starts an embedded NATS server with JetStream on the loopback
// address addr ("127.0.0.1:0" for a free port), storing in dir.
func startServer(addr, dir string) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-listen %q: the demo server listens on a loopback address only", addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: %w", addr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		stopServer(s)
		return nil, errors.New("embedded NATS server did not start in 10s")
	}
	return s, nil
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// runServerRole is -role server: an embedded JetStream server until Ctrl-C,
// for trying the roles without installing nats-server.
func runServerRole(ctx context.Context, addr, dir string, out io.Writer) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "jsworker-store-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	s, err := startServer(addr, dir)
	if err != nil {
		return err
	}
	defer stopServer(s)
	fmt.Fprintf(out, "server: NATS with JetStream at %s, store %s; Ctrl-C stops\n", s.ClientURL(), dir)
	<-ctx.Done()
	return nil
}
