package ambassador_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
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

// server starts a TLS upstream that requires a client certificate from the
// CA and answers "<client CN> <proto>".
func (p *pki) server(h2 bool) *httptest.Server {
	p.t.Helper()
	certPEM, keyPEM := p.issue("upstream", true)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(p.t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.Proto)
	}))
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	p.t.Cleanup(srv.Close)
	return srv
}

// getNewConn sends a GET on a fresh connection, so it sees the current
// certificates.
func getNewConn(t *testing.T, rt http.RoundTripper, rawURL string) (string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	req.Close = true
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTLSOrigination(t *testing.T) {
	p := newPKI(t)
	srv := p.server(true)
	eps := discovery.Config{Static: []string{hostOf(t, srv.URL)}}
	withCert := p.clientTLS("client-1")

	cases := []struct {
		name     string
		protocol string
		tls      ambassador.TLSConfig
		want     string // body, or "" when the request must fail ...
		wantErr  string // ... with this in the error
	}{
		{"mTLS over HTTP/1.1", "http1", withCert, "client-1 HTTP/1.1", ""},
		{"mTLS with h2 by ALPN", "h2", withCert, "client-1 HTTP/2.0", ""},
		{"server name checked", "h2", ambassador.TLSConfig{CAFile: withCert.CAFile, CertFile: withCert.CertFile, KeyFile: withCert.KeyFile, ServerName: "users.internal"}, "client-1 HTTP/2.0", ""},
		{"wrong server name refused", "h2", ambassador.TLSConfig{CAFile: withCert.CAFile, CertFile: withCert.CertFile, KeyFile: withCert.KeyFile, ServerName: "other.internal"}, "", "other.internal"},
		{"no client certificate refused", "http1", ambassador.TLSConfig{CAFile: withCert.CAFile}, "", "certificate required"},
		{"unknown CA refused", "h2", ambassador.TLSConfig{CertFile: withCert.CertFile, KeyFile: withCert.KeyFile}, "", "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, ambassador.ServiceConfig{Name: "users", Protocol: tc.protocol, TLS: tc.tls, Discovery: eps})
			body, err := get(t, s, "http://users/")
			if tc.want == "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, body)
		})
	}
}

func TestTLSProtoMajorH2(t *testing.T) {
	p := newPKI(t)
	srv := p.server(true)
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Protocol: "h2", TLS: p.clientTLS("c"),
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}})
	resp, err := (&http.Client{Transport: s}).Get("http://users/")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.NotNil(t, resp.TLS)
}

func TestTLSMissingFileFailsAtStart(t *testing.T) {
	_, err := ambassador.NewStack(ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}},
		TLS:       ambassador.TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}})
	require.Error(t, err)
	assert.ErrorContains(t, err, "tls.ca_file")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestTLSCertificateRotation(t *testing.T) {
	p := newPKI(t)
	srv := p.server(false)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	s := newStack(t, ambassador.ServiceConfig{Name: "users", TLS: p.clientTLS("client-1"),
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}}, ambassador.WithLogger(logger))

	body, err := getNewConn(t, s, "http://users/")
	require.NoError(t, err)
	assert.Equal(t, "client-1 HTTP/1.1", body)

	p.clientTLS("client-2")
	require.Eventually(t, func() bool {
		body, err := getNewConn(t, s, "http://users/")
		return err == nil && body == "client-2 HTTP/1.1"
	}, 10*time.Second, 5*time.Millisecond, "rotated certificate picked up")

	// A broken file is logged and the previous certificate keeps serving.
	p.write("client.pem", []byte("not a certificate"))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "holds no PEM certificate")
	}, 10*time.Second, 5*time.Millisecond)
	body, err = getNewConn(t, s, "http://users/")
	require.NoError(t, err)
	assert.Equal(t, "client-2 HTTP/1.1", body)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
