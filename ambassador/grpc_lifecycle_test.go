package ambassador_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
)

// endpointFile writes an endpoint file for discovery's file source.
func endpointFile(t *testing.T, addr string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	require.NoError(t, os.WriteFile(path, []byte("- address: "+addr+"\n"), 0o600))
	return path
}

// TestDialOptionsNotDialedLeavesNoGoroutines: options built and dropped
// without a dial hold no goroutine: not discovery's file watch or health
// checker, not the TLS file watcher.
func TestDialOptionsNotDialedLeavesNoGoroutines(t *testing.T) {
	p := newPKI(t)
	tlsc := p.ClientTLS("client-1")
	for _, tc := range []struct {
		name string
		cfg  ambassador.ServiceConfig
	}{
		{"file source and health checks", ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{
			File: endpointFile(t, "127.0.0.1:1"), HealthCheck: discovery.HealthCheckConfig{Path: "/healthz"}}}},
		{"tls files", ambassador.ServiceConfig{Name: "users", Protocol: "h2", TLS: tlsc,
			Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			opts, err := ambassador.DialOptions(tc.cfg)
			require.NoError(t, err)
			require.NotEmpty(t, opts)
			opts = nil
			_ = opts
			goleak.VerifyNone(t, before)
		})
	}
}

// TestDialOptionsClosedConnStopsDiscovery: the file source's watch runs
// while the ClientConn holds the resolver and is gone once it closes.
func TestDialOptionsClosedConnStopsDiscovery(t *testing.T) {
	addr := grpcUpstream(t)
	before := goleak.IgnoreCurrent()
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{File: endpointFile(t, addr)}})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	_, err = checkHealth(t, conn)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	goleak.VerifyNone(t, before)
}

// TestDialOptionsIdleChannelResolvesAgain: the options keep grpc's idle
// mode; a channel that went idle (its resolver closed) resolves again and
// serves its next call. (The options used to switch idle mode off, and a
// resolver closed by idleness released the stack for good.)
func TestDialOptionsIdleChannelResolvesAgain(t *testing.T) {
	addr := grpcUpstream(t)
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{File: endpointFile(t, addr)}})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", append(opts, grpc.WithIdleTimeout(20*time.Millisecond))...)
	require.NoError(t, err)
	defer conn.Close()
	for i := 0; i < 2; i++ {
		_, err = checkHealth(t, conn)
		require.NoError(t, err, "call %d", i)
		require.Eventually(t, func() bool { return conn.GetState() == connectivity.Idle },
			5*time.Second, time.Millisecond, "the channel goes idle")
	}
}

// TestDialOptionsTLSRotationAtHandshake: the options watch no files; a
// handshake reads them, so a certificate rotated after DialOptions is the
// one the next connection presents.
func TestDialOptionsTLSRotationAtHandshake(t *testing.T) {
	p := newPKI(t)
	addr := mtlsUpstream(t, p)
	rogue := newPKI(t) // a CA the upstream does not trust
	rc := rogue.ClientTLS("rogue")
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{Name: "users", Protocol: "h2",
		TLS:       ambassador.TLSConfig{CAFile: filepath.Join(p.Dir, "ca.pem"), CertFile: rc.CertFile, KeyFile: rc.KeyFile, ServerName: "users.internal"},
		Discovery: discovery.Config{Static: []string{addr}}})
	require.NoError(t, err)
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient("outbound:///users", opts...)
		require.NoError(t, err)
		return conn
	}
	conn := dial()
	_, err = checkHealth(t, conn)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.NoError(t, conn.Close())

	certPEM, keyPEM := p.Issue("client-2", false)
	rogue.Write("client-key.pem", keyPEM)
	rogue.Write("client.pem", certPEM)
	conn = dial()
	defer conn.Close()
	st, err := checkHealth(t, conn)
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
}
