package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testPKI is a throw-away CA with one server and one client certificate,
// written as PEM files.
type testPKI struct {
	pool                      *x509.CertPool
	server                    tls.Certificate
	caFile, certFile, keyFile string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outbound test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "upstream.test"},
			DNSNames:     []string{"upstream.test"},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	pemFile := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return path
	}
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth)
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	require.NoError(t, err)
	p := testPKI{
		pool:     x509.NewCertPool(),
		server:   tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
		caFile:   pemFile("ca.pem", "CERTIFICATE", caDER),
		certFile: pemFile("client.pem", "CERTIFICATE", cliDER),
		keyFile:  pemFile("client-key.pem", "EC PRIVATE KEY", cliKeyDER),
	}
	p.pool.AddCert(ca)
	return p
}

func TestMutualTLSOrigination(t *testing.T) {
	pki := newTestPKI(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	up.EnableHTTP2 = true
	up.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
	}
	up.StartTLS()
	defer up.Close()
	addr := hostOf(up.URL)

	admin, lis := freeAddr(t), freeAddr(t)
	runAmbassador(t, admin, fmt.Sprintf(`
admin: {address: %[1]s}
listeners:
  - address: %[2]s
    routes:
      - {path_prefix: /h1/, service: mtls-h1}
      - {path_prefix: /h2/, service: mtls-h2}
      - {path_prefix: /nocert/, service: nocert}
services:
  mtls-h1:
    discovery: {static: [%[3]s]}
    tls: {ca_file: %[4]s, cert_file: %[5]s, key_file: %[6]s, server_name: upstream.test}
  mtls-h2:
    discovery: {static: [%[3]s]}
    protocol: h2
    tls: {ca_file: %[4]s, cert_file: %[5]s, key_file: %[6]s, server_name: upstream.test}
  nocert:
    discovery: {static: [%[3]s]}
    tls: {ca_file: %[4]s, server_name: upstream.test}
`, admin, lis, addr, pki.caFile, pki.certFile, pki.keyFile))
	c := newClient(t)

	resp, body := get(t, c, "http://"+lis+"/h1/x")
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "HTTP/1.1 upstream.test", body)

	resp, body = get(t, c, "http://"+lis+"/h2/x")
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "HTTP/2.0 upstream.test", body, "protocol h2 negotiates HTTP/2 by ALPN")

	resp, err := c.Get("http://" + lis + "/nocert/x")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode, "refused without the client certificate")
	assert.Contains(t, []string{"upstream_connect_failure", "upstream_reset"}, resp.Header.Get("X-Outbound-Error"))
}
