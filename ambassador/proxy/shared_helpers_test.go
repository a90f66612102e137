package proxy_test

// Test helpers copied from ../tls_test.go and ../grpc_test.go (package
// ambassador_test), whose stack tests use them too.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
)

// pki is a test CA with files in a temp dir: ca.pem, and the current client
// certificate in client.pem / client-key.pem.
type pki struct {
	t      *testing.T
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outbound test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &pki{t: t, dir: t.TempDir(), caCert: cert, caKey: key, pool: x509.NewCertPool(), serial: 1}
	p.pool.AddCert(cert)
	p.write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

// issue signs a certificate for cn; server certificates hold 127.0.0.1 and
// users.internal.
func (p *pki) issue(cn string, server bool) (certPEM, keyPEM []byte) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(p.t, err)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"users.internal"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	require.NoError(p.t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(p.t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// write replaces a file atomically (write then rename), as rotations do.
func (p *pki) write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	tmp := filepath.Join(p.dir, "."+name+".tmp")
	require.NoError(p.t, os.WriteFile(tmp, data, 0o600))
	require.NoError(p.t, os.Rename(tmp, path))
	return path
}

// clientTLS issues a client certificate for cn into client.pem and
// client-key.pem and returns the TLSConfig naming the files.
func (p *pki) clientTLS(cn string) ambassador.TLSConfig {
	p.t.Helper()
	certPEM, keyPEM := p.issue(cn, false)
	// Between the two writes a reload may see a mismatched pair: it is
	// logged and skipped, and the next event picks up the complete pair.
	return ambassador.TLSConfig{
		CAFile:   filepath.Join(p.dir, "ca.pem"),
		KeyFile:  p.write("client-key.pem", keyPEM),
		CertFile: p.write("client.pem", certPEM),
	}
}

// grpcUpstream starts a grpc server with the health service on loopback;
// service "users" is SERVING. Calls to unknown methods block until their
// deadline.
func grpcUpstream(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	opts = append(opts, grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		<-stream.Context().Done()
		return status.FromContextError(stream.Context().Err()).Err()
	}))
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("users", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}
