package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
)

// PKI is a test CA with files in a temp dir: ca.pem, and the current client
// certificate in client.pem / client-key.pem.
type PKI struct {
	t *testing.T
	// Dir holds ca.pem and the files Write and ClientTLS write.
	Dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	// Pool holds the CA certificate.
	Pool   *x509.CertPool
	serial int64
}

// NewPKI makes a CA valid for a day and writes ca.pem.
func NewPKI(t *testing.T) *PKI {
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
	p := &PKI{t: t, Dir: t.TempDir(), caCert: cert, caKey: key, Pool: x509.NewCertPool(), serial: 1}
	p.Pool.AddCert(cert)
	p.Write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

// issue signs a certificate for cn; server certificates hold 127.0.0.1 and
// users.internal.
func (p *PKI) Issue(cn string, server bool) (certPEM, keyPEM []byte) {
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
func (p *PKI) Write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.Dir, name)
	tmp := filepath.Join(p.Dir, "."+name+".tmp")
	require.NoError(p.t, os.WriteFile(tmp, data, 0o600))
	require.NoError(p.t, os.Rename(tmp, path))
	return path
}

// clientTLS issues a client certificate for cn into client.pem and
// client-key.pem and returns the TLSConfig naming the files.
func (p *PKI) ClientTLS(cn string) ambassador.TLSConfig {
	p.t.Helper()
	certPEM, keyPEM := p.Issue(cn, false)
	// Between the two writes a reload may see a mismatched pair: it is
	// logged and skipped, and the next event picks up the complete pair.
	return ambassador.TLSConfig{
		CAFile:   filepath.Join(p.Dir, "ca.pem"),
		KeyFile:  p.Write("client-key.pem", keyPEM),
		CertFile: p.Write("client.pem", certPEM),
	}
}

// server starts a TLS upstream that requires a client certificate from the
// CA and answers "<client CN> <proto>".
func (p *PKI) Server(h2 bool) *httptest.Server {
	p.t.Helper()
	certPEM, keyPEM := p.Issue("upstream", true)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(p.t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.Proto)
	}))
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.Pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	p.t.Cleanup(srv.Close)
	return srv
}
