package proxy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// loadServer writes yml to a file, loads it with LoadConfig, and serves
// it; it returns the server, its first listener URL and the file's bytes.
func loadServer(t *testing.T, yml string, opts ...proxy.Option) (*proxy.Server, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	cfg, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, append([]proxy.Option{proxy.WithLogger(quietLogger())}, opts...)...)
	require.NoError(t, err)
	urls := serve(t, s)
	return s, urls[0], path
}

func TestAdminIndexListsEveryEndpoint(t *testing.T) {
	yml := "admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: a}]\n" +
		"services: {a: {discovery: {static: [" + named(t, "a") + "]}}}\n"
	s, _, _ := loadServer(t, yml, proxy.WithMetricsHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "# metrics\n")
	})))
	admin := "http://" + s.AdminAddr().String()
	c := client(t)
	code, _, body := fetch(t, c, http.MethodGet, admin+"/", "")
	require.Equal(t, http.StatusOK, code)
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 2, "line %q: a path and a description", line)
		listed = append(listed, f[0])
	}
	assert.Equal(t, []string{"/", "/healthz", "/readyz", "/metrics", "/status", "/config"}, listed)
	for _, p := range listed {
		code, _, body := fetch(t, c, http.MethodGet, admin+p, "")
		assert.Equal(t, http.StatusOK, code, "%s: %s", p, body)
	}
	code, _, _ = fetch(t, c, http.MethodGet, admin+"/nope", "")
	assert.Equal(t, http.StatusNotFound, code, "/ answers only itself")
}

func TestAdminStatusCountsRequestsFailuresAndProcess(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	addr := up.Listener.Addr().String()
	yml := "admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: a}]\n" +
		"services: {a: {discovery: {static: [" + addr + "]}}}\n"
	before := time.Now().Add(-time.Second)
	s, url, path := loadServer(t, yml)
	c := client(t)
	const n, k = 7, 3
	for i := range n {
		p := "/ok"
		if i < k {
			p = "/fail"
		}
		_, _, _ = fetch(t, c, http.MethodGet, url+p, "")
	}
	code, _, body := fetch(t, c, http.MethodGet, "http://"+s.AdminAddr().String()+"/status", "")
	require.Equal(t, http.StatusOK, code)
	var st proxy.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Len(t, st.Services["a"].Endpoints, 1)
	ep := st.Services["a"].Endpoints[0]
	assert.Equal(t, addr, ep.Address)
	assert.EqualValues(t, n, ep.Requests)
	assert.EqualValues(t, k, ep.Failures)
	assert.Equal(t, "503 Service Unavailable", ep.LastError)
	for _, f := range []string{`"requests": 7`, `"failures": 3`, `"last_error"`, `"version"`, `"config_sha256"`, `"loaded_at"`} {
		assert.Contains(t, body, f)
	}

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), st.Process.ConfigSHA256)
	assert.Equal(t, path, st.Process.ConfigFile)
	assert.NotEmpty(t, st.Process.Version)
	assert.Equal(t, proxy.Version(), st.Process.Version)
	var raw struct {
		Process struct {
			LoadedAt string `json:"loaded_at"`
		} `json:"process"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &raw))
	at, err := time.Parse(time.RFC3339, raw.Process.LoadedAt)
	require.NoError(t, err, "loaded_at is RFC 3339: %q", raw.Process.LoadedAt)
	assert.False(t, at.Before(before.Truncate(time.Second)) || at.After(time.Now()), "loaded_at %v", at)
}

func TestAdminStatusFollowsReload(t *testing.T) {
	addr := named(t, "a")
	yml := "admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: a}]\n" +
		"services: {a: {discovery: {static: [" + addr + "]}}}\n"
	s, _, path := loadServer(t, yml)
	first := s.Status().Process.ConfigSHA256
	require.NoError(t, os.WriteFile(path, []byte(yml+"# edited\n"), 0o600))
	cfg, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	require.NoError(t, s.Reload(cfg))
	sum := sha256.Sum256([]byte(yml + "# edited\n"))
	assert.NotEqual(t, first, s.Status().Process.ConfigSHA256)
	assert.Equal(t, hex.EncodeToString(sum[:]), s.Status().Process.ConfigSHA256)
}

func TestAdminConfigShowsConfigWithoutSecrets(t *testing.T) {
	p := newPKI(t)
	tlsc := p.ClientTLS("client")
	keyPEM, err := os.ReadFile(tlsc.KeyFile)
	require.NoError(t, err)
	addr := named(t, "a")
	yml := "admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: users}]\n" +
		"services:\n  users:\n    discovery: {static: [" + addr + "]}\n    timeout: 3s\n" +
		"    tls: {ca_file: " + tlsc.CAFile + ", cert_file: " + tlsc.CertFile + ", key_file: " + tlsc.KeyFile + "}\n"
	s, _, _ := loadServer(t, yml)
	resp, err := client(t).Get("http://" + s.AdminAddr().String() + "/config")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	body := string(b)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, resp.Header.Get("Content-Type"), "yaml")
	for _, want := range []string{"users:", addr, "timeout: 3s", "key_file: " + tlsc.KeyFile, "cert_file: " + tlsc.CertFile} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "PRIVATE KEY")
	assert.NotContains(t, body, strings.TrimSpace(strings.Split(string(keyPEM), "\n")[1]), "no line of the key")
	cfg, err := proxy.ParseConfig(b, "")
	require.NoError(t, err, "/config parses back as a config:\n%s", body)
	assert.Equal(t, []string{addr}, cfg.Services["users"].Discovery.Static)
}
