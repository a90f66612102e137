package ambassador_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
)

// pki is the test CA of internal/testkit.
type pki = testkit.PKI

func newPKI(t *testing.T) *pki { return testkit.NewPKI(t) }

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
	srv := p.Server(true)
	eps := discovery.Config{Static: []string{hostOf(t, srv.URL)}}
	withCert := p.ClientTLS("client-1")

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
	srv := p.Server(true)
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Protocol: "h2", TLS: p.ClientTLS("c"),
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
	srv := p.Server(false)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	s := newStack(t, ambassador.ServiceConfig{Name: "users", TLS: p.ClientTLS("client-1"),
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}}, ambassador.WithLogger(logger))

	body, err := getNewConn(t, s, "http://users/")
	require.NoError(t, err)
	assert.Equal(t, "client-1 HTTP/1.1", body)

	p.ClientTLS("client-2")
	require.Eventually(t, func() bool {
		body, err := getNewConn(t, s, "http://users/")
		return err == nil && body == "client-2 HTTP/1.1"
	}, 10*time.Second, 5*time.Millisecond, "rotated certificate picked up")

	// A broken file is logged and the previous certificate keeps serving.
	p.Write("client.pem", []byte("not a certificate"))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "holds no PEM certificate")
	}, 10*time.Second, 5*time.Millisecond)
	body, err = getNewConn(t, s, "http://users/")
	require.NoError(t, err)
	assert.Equal(t, "client-2 HTTP/1.1", body)
}

type syncBuffer = testkit.SyncBuffer
