package ambassador_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// grpcUpstream is testkit.GRPCUpstream: the health service with "users"
// SERVING; unknown methods block until their deadline.
func grpcUpstream(t *testing.T, opts ...grpc.ServerOption) string {
	return testkit.GRPCUpstream(t, opts...)
}

func checkHealth(t *testing.T, conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "users"})
	if err != nil {
		return 0, err
	}
	return resp.GetStatus(), nil
}

func needsRealDiscovery(t *testing.T) {
	t.Helper()
	s, err := ambassador.NewStack(ambassador.ServiceConfig{Name: "probe", Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}}})
	require.NoError(t, err)
	defer s.Close()
	if s.Discovery().ResolverBuilder() == nil {
		t.Skip("needs real discovery")
	}
}

// mtlsUpstream starts a grpc health server that requires client
// certificates from p's CA.
func mtlsUpstream(t *testing.T, p *pki) string {
	t.Helper()
	certPEM, keyPEM := p.Issue("upstream", true)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return grpcUpstream(t, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.Pool,
		MinVersion:   tls.VersionTLS12,
	})))
}

// TestDialOptionsThroughResolver dials outbound:///users over mTLS: the
// discovery resolver finds the endpoint, the policies wrap the call, and
// once the ClientConn is closed no goroutine is left (the options watch no
// certificate files).
func TestDialOptionsThroughResolver(t *testing.T) {
	needsRealDiscovery(t)
	p := newPKI(t)
	addr := mtlsUpstream(t, p)
	tlsc := p.ClientTLS("client-1")
	tlsc.ServerName = "users.internal"
	before := goleak.IgnoreCurrent()
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{
		Name: "users", Protocol: "h2", TLS: tlsc,
		Discovery: discovery.Config{Static: []string{addr}},
		Retry:     &retry.Config{}, RateLimit: &ratelimit.Config{RPS: 1000}, Breaker: &breaker.Config{},
	})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	st, err := checkHealth(t, conn)
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
	require.NoError(t, conn.Close())
	goleak.VerifyNone(t, before) // the ClientConn closed: nothing left running
}

// TestStackDialOptions uses the stack's options against a passthrough
// target, which needs no discovery resolver: credentials, interceptors and
// the unary timeout.
func TestStackDialOptions(t *testing.T) {
	addr := grpcUpstream(t)
	// The timeout bounds every call, the first one's connection set-up
	// included: 100ms was sometimes too short for that on a loaded machine
	// ("context deadline exceeded while waiting for connections to become
	// ready"). The slow call below never ends on its own, so any bound
	// shows the timeout at work.
	s := newStack(t, ambassador.ServiceConfig{
		Name: "users", Protocol: "h2c", Timeout: time.Second,
		Discovery: discovery.Config{Static: []string{addr}},
		Retry:     &retry.Config{}, Breaker: &breaker.Config{},
	})
	opts, err := s.DialOptions()
	require.NoError(t, err)
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	require.NoError(t, err)
	defer conn.Close()

	st, err := checkHealth(t, conn)
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, st)

	start := time.Now()
	err = conn.Invoke(context.Background(), "/test.Slow/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 900*time.Millisecond, "the call ran until the service timeout")
	assert.Less(t, elapsed, 5*time.Second, "the service timeout bounds the call")
}

func TestStackDialOptionsMTLS(t *testing.T) {
	p := newPKI(t)
	addr := mtlsUpstream(t, p)
	withCert := p.ClientTLS("client-1")
	withCert.ServerName = "users.internal"

	for _, tc := range []struct {
		name string
		tls  ambassador.TLSConfig
		ok   bool
	}{
		{"with client certificate", withCert, true},
		{"without client certificate", ambassador.TLSConfig{CAFile: withCert.CAFile, ServerName: "users.internal"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, ambassador.ServiceConfig{Name: "users", Protocol: "h2", TLS: tc.tls,
				Discovery: discovery.Config{Static: []string{addr}}})
			opts, err := s.DialOptions()
			require.NoError(t, err)
			conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
			require.NoError(t, err)
			defer conn.Close()
			st, err := checkHealth(t, conn)
			if !tc.ok {
				assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
		})
	}
}
