package proxy_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/boundedfile"
)

// within runs f and fails the test when it has not returned after 5s: a
// read of a FIFO would block for a writer that never comes.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("still running after 5s")
	}
}

// TestLoadConfigReadsTheFilesItNames: every file a config names is read
// and parsed as start-up will, bounded, and a bad one is a problem at its
// key with the line of that key.
func TestLoadConfigReadsTheFilesItNames(t *testing.T) {
	p := newPKI(t)
	good := p.ClientTLS("client")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big.pem")
	require.NoError(t, os.WriteFile(big, make([]byte, ambassador.MaxTLSFileSize+1), 0o600))
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not PEM\n"), 0o600))
	eps := filepath.Join(dir, "eps.yaml")
	require.NoError(t, os.WriteFile(eps, []byte("- {address: 127.0.0.1:8081}\n"), 0o600))
	badEps := filepath.Join(dir, "bad-eps.yaml")
	require.NoError(t, os.WriteFile(badEps, []byte("- {address: nope}\n"), 0o600))

	const svc = "listeners: [{address: 127.0.0.1:10001, service: users}]\nservices:\n  users:\n"
	tlsDoc := func(ca, cert, key string) string {
		return svc + "    discovery: {static: [127.0.0.1:8081]}\n    tls: {ca_file: " + ca + ", cert_file: " + cert + ", key_file: " + key + "}\n"
	}
	fileDoc := func(path string) string { return svc + "    discovery: {file: " + path + "}\n" }
	for _, tc := range []struct {
		name, doc string
		path, msg string // "" = valid
		is        error
	}{
		{"good files", tlsDoc(good.CAFile, good.CertFile, good.KeyFile), "", "", nil},
		{"good endpoint file", fileDoc(eps), "", "", nil},
		{"ca /dev/zero", tlsDoc("/dev/zero", good.CertFile, good.KeyFile), "services.users.tls.ca_file", "is a device", boundedfile.ErrNotRegular},
		{"ca FIFO", tlsDoc(fifo, good.CertFile, good.KeyFile), "services.users.tls.ca_file", "named pipe", boundedfile.ErrNotRegular},
		{"ca too large", tlsDoc(big, good.CertFile, good.KeyFile), "services.users.tls.ca_file", "more than 1048576 bytes", boundedfile.ErrTooLarge},
		{"ca not PEM", tlsDoc(notPEM, good.CertFile, good.KeyFile), "services.users.tls.ca_file", "holds no PEM certificate", nil},
		{"ca missing", tlsDoc(filepath.Join(dir, "nope.pem"), good.CertFile, good.KeyFile), "services.users.tls.ca_file", "no such file", fs.ErrNotExist},
		{"cert directory", tlsDoc(good.CAFile, dir, good.KeyFile), "services.users.tls.cert_file", "is a directory", boundedfile.ErrNotRegular},
		{"cert not PEM", tlsDoc(good.CAFile, notPEM, good.KeyFile), "services.users.tls.cert_file", "holds no PEM certificate", nil},
		{"key FIFO", tlsDoc(good.CAFile, good.CertFile, fifo), "services.users.tls.key_file", "named pipe", boundedfile.ErrNotRegular},
		{"key not PEM", tlsDoc(good.CAFile, good.CertFile, notPEM), "services.users.tls.key_file", "holds no PEM private key", nil},
		{"key of another cert", tlsDoc(good.CAFile, good.CAFile, good.KeyFile), "services.users.tls.cert_file", "with key_file", nil},
		{"endpoint file /dev/zero", fileDoc("/dev/zero"), "services.users.discovery.file", "not a regular file", nil},
		{"endpoint file FIFO", fileDoc(fifo), "services.users.discovery.file", "not a regular file", nil},
		{"endpoint file bad", fileDoc(badEps), "services.users.discovery.file", "[0].address", nil},
		{"endpoint file missing", fileDoc("missing.yaml"), "services.users.discovery.file", "no such file", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "amb.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.doc), 0o600))
			var err error
			within(t, func() { _, err = proxy.LoadConfig(path) })
			if tc.path == "" {
				require.NoError(t, err)
				return
			}
			var ce *proxy.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, "%v", err)
			pr := ce.Problems[0]
			assert.Equal(t, tc.path, pr.Path)
			assert.Contains(t, pr.Msg, tc.msg)
			assert.Positive(t, pr.Line)

			// ParseConfig reads nothing: the same document parses.
			data, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			_, perr := proxy.ParseConfig(data, filepath.Dir(path))
			assert.NoError(t, perr)
		})
	}
}

// TestNewStackReadsTLSFilesBounded: a Stack built in code (no LoadConfig)
// fails at once, naming the key, on a device, a FIFO or an oversized file,
// with the cause for errors.Is.
func TestNewStackReadsTLSFilesBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big.pem")
	require.NoError(t, os.WriteFile(big, make([]byte, 2<<20), 0o600))
	for _, tc := range []struct {
		path string
		is   error
	}{
		{"/dev/zero", boundedfile.ErrNotRegular},
		{fifo, boundedfile.ErrNotRegular},
		{big, boundedfile.ErrTooLarge},
	} {
		var err error
		within(t, func() {
			_, err = ambassador.NewStack(ambassador.ServiceConfig{Name: "users",
				Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}},
				TLS:       ambassador.TLSConfig{CAFile: tc.path}})
		})
		require.Error(t, err, tc.path)
		assert.ErrorContains(t, err, "tls.ca_file: ")
		assert.True(t, errors.Is(err, tc.is), "%v", err)
	}
}

// TestParseConfigBounds: split weights are integers in [0, 10000] with one
// positive (two legs of 2147483647 overflowed the sum: every request got
// 404), and the service and limits values are bounded.
func TestParseConfigBounds(t *testing.T) {
	split := func(ws ...string) string {
		legs := make([]string, len(ws))
		for i, w := range ws {
			legs[i] = "{service: users, weight: " + w + "}"
		}
		return "listeners:\n  - address: 127.0.0.1:10001\n    routes: [{split: [" + strings.Join(legs, ", ") +
			"]}]\nservices:\n  users:\n    discovery: {static: [127.0.0.1:8081]}\n"
	}
	for _, tc := range []struct {
		name, doc, path, msg string // path "" = valid
	}{
		{"weights at the bound", split("10000", "0"), "", ""},
		{"weights overflow", split("2147483647", "10"), "listeners[0].routes[0].split[0].weight", "between 0 and 10000, got 2147483647"},
		{"weight 10001", split("10001"), "listeners[0].routes[0].split[0].weight", "between 0 and 10000"},
		{"weight -1", split("-1", "1"), "listeners[0].routes[0].split[0].weight", "between 0 and 10000"},
		{"weights zero", split("0", "0"), "listeners[0].routes[0].split", "all zero"},
		{"timeout 24h", base + "    timeout: 24h\n", "", ""},
		{"timeout 25h", base + "    timeout: 25h\n", "services.users.timeout", "at most 24h0m0s"},
		{"max_connections", base + "    max_connections: 1000001\n", "services.users.max_connections", "at most 1000000"},
		{"max_concurrent_requests", base + "    max_concurrent_requests: 1000000000000\n", "services.users.max_concurrent_requests", "at most 1000000"},
		{"max_header_bytes", base + "limits: {max_header_bytes: 1GiB}\n", "limits.max_header_bytes", "at most 16MiB"},
		{"read_header_timeout", base + "limits: {read_header_timeout: 2h}\n", "limits.read_header_timeout", "at most 1h0m0s"},
		{"drain_timeout", base + "limits: {drain_timeout: 1000h}\n", "limits.drain_timeout", "at most 1h0m0s"},
		{"max_attempts", base + "    retry: {max_attempts: 2147483647, base_delay: 1ns}\n", "services.users.retry.max_attempts", "at most 10"},
		{"rps", base + "    ratelimit: {rps: 1e-300}\n", "services.users.ratelimit.rps", "≥ 0.001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.ParseConfig([]byte(tc.doc), "")
			if tc.path == "" {
				require.NoError(t, err)
				return
			}
			var ce *proxy.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, "%v", err)
			assert.Equal(t, tc.path, ce.Problems[0].Path)
			assert.Contains(t, ce.Problems[0].Msg, tc.msg)
		})
	}
}
