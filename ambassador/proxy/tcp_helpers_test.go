package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// startEcho starts a raw TCP server on loopback for tcp-listener tests:
// each connection first gets greeting (when not ""), then everything it
// sends is echoed, and its EOF is passed back as a half-close.
func startEcho(t *testing.T, greeting string) *testkit.RawUpstream {
	t.Helper()
	return testkit.NewRawUpstream(t, func(_ *testkit.RawUpstream, c net.Conn, br *bufio.Reader) {
		if greeting != "" {
			if _, err := io.WriteString(c, greeting); err != nil {
				return
			}
		}
		if _, err := io.Copy(c, br); err == nil {
			_ = c.(*net.TCPConn).CloseWrite()
		}
		// Hold the connection until the peer closes its side.
		_, _ = io.Copy(io.Discard, br)
	})
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := ln.Addr().String()
	require.NoError(t, ln.Close())
	return a
}

// tcpAmb is an ambassador with one tcp listener for service "db".
type tcpAmb struct {
	addr   string
	srv    *proxy.Server
	log    *testkit.SyncBuffer
	reader *sdkmetric.ManualReader
	cancel context.CancelFunc
	done   chan error
}

// tcpConfig returns the YAML of an ambassador whose one tcp listener
// sends to service db at endpoints (unless extra has its own discovery:);
// extra is YAML lines under the service,
// limits the limits flow mapping ("" for none).
func tcpConfig(endpoints []string, extra, limits string) string {
	var b strings.Builder
	b.WriteString("admin: {address: 127.0.0.1:0}\n")
	if limits != "" {
		b.WriteString("limits: " + limits + "\n")
	}
	b.WriteString("listeners:\n  - {address: 127.0.0.1:0, protocol: tcp, service: db}\nservices:\n  db:\n    protocol: tcp\n")
	if !strings.Contains(extra, "discovery:") {
		b.WriteString("    discovery: {static: [" + strings.Join(endpoints, ", ") + "]}\n")
	}
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		if l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

// startTCPAmb runs an ambassador from tcpConfig until the test ends.
func startTCPAmb(t *testing.T, endpoints []string, extra, limits string) *tcpAmb {
	t.Helper()
	src := tcpConfig(endpoints, extra, limits)
	cfg, err := proxy.ParseConfig([]byte(src), t.TempDir())
	require.NoError(t, err, "config:\n%s", src)
	a := &tcpAmb{log: &testkit.SyncBuffer{}, reader: sdkmetric.NewManualReader(), done: make(chan error, 1)}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(a.reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	a.srv, err = proxy.NewServer(cfg, proxy.WithLogger(quietLogger()),
		proxy.WithAccessLog(slog.New(slog.NewJSONHandler(a.log, nil))), proxy.WithMeterProvider(mp))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- a.srv.Run(ctx) }()
	select {
	case <-a.srv.Ready():
	case err := <-a.done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-a.done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	a.addr = a.srv.Addrs()[0].String()
	return a
}

// dial connects a client to the ambassador's tcp listener.
func (a *tcpAmb) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.addr, 2*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// counter returns the sum of the int64 counter (or up-down counter) name
// over the points whose attributes include every key=value of want.
func (a *tcpAmb) counter(t *testing.T, name string, want map[string]string) int64 {
	t.Helper()
	var n int64
points:
	for _, p := range testkit.MetricData[metricdata.Sum[int64]](t, a.reader, name).DataPoints {
		for k, v := range want {
			if got, ok := p.Attributes.Value(attribute.Key(k)); !ok || got.AsString() != v {
				continue points
			}
		}
		n += p.Value
	}
	return n
}

// echoOnce writes msg and reads the same number of bytes back.
func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
	require.NoError(t, c.SetDeadline(time.Time{}))
}

// readGreeting reads the n-byte greeting of a tcpUpstream.
func readGreeting(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	return string(b)
}

// waitEOF waits (bounded) for the peer to close c, and fails on data or
// on the bound.
func waitEOF(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := bufio.NewReader(c).Read(make([]byte, 1))
	require.Zero(t, n)
	require.Error(t, err)
	var ne net.Error
	if errors.As(err, &ne) {
		require.False(t, ne.Timeout(), "the connection was not closed within 5s")
	}
}
