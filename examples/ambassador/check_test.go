package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// badConfig is one config that start-up refuses; -check must refuse it too,
// naming key.
type badConfig struct {
	name string
	// svc is more YAML for the one service (unindented lines), routes
	// replaces the listener's "service: users" with routes.
	svc, routes string
	key         string
}

// badConfigs builds the table; files it needs live in dir.
func badConfigs(t *testing.T, dir string) []badConfig {
	t.Helper()
	fifo := filepath.Join(dir, "fifo.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big.pem")
	require.NoError(t, os.WriteFile(big, make([]byte, 2<<20), 0o600))
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello, not a certificate\n"), 0o600))
	pki := newTestPKI(t)
	bigEndpoints := filepath.Join(dir, "endpoints.yaml")
	require.NoError(t, os.WriteFile(bigEndpoints, make([]byte, 17<<20), 0o600))

	tls := func(k, v string) string { return fmt.Sprintf("tls: {%s: %s}", k, v) }
	pair := func(cert, key string) string { return fmt.Sprintf("tls: {cert_file: %s, key_file: %s}", cert, key) }
	split := func(w ...string) string {
		var legs []string
		for _, x := range w {
			legs = append(legs, "{service: users, weight: "+x+"}")
		}
		return "[{split: [" + strings.Join(legs, ", ") + "]}]"
	}
	const (
		caKey    = "services.users.tls.ca_file"
		certKey  = "services.users.tls.cert_file"
		keyKey   = "services.users.tls.key_file"
		weight0  = "listeners[0].routes[0].split[0].weight"
		attempts = "services.users.retry.max_attempts"
		rps      = "services.users.ratelimit.rps"
	)
	return []badConfig{
		{name: "ca_file dev-zero", svc: tls("ca_file", "/dev/zero"), key: caKey},
		{name: "ca_file FIFO", svc: tls("ca_file", fifo), key: caKey},
		{name: "ca_file 2MiB", svc: tls("ca_file", big), key: caKey},
		{name: "ca_file not PEM", svc: tls("ca_file", notPEM), key: caKey},
		{name: "ca_file missing", svc: tls("ca_file", filepath.Join(dir, "missing.pem")), key: caKey},
		{name: "ca_file directory", svc: tls("ca_file", dir), key: caKey},
		{name: "cert_file dev-zero", svc: pair("/dev/zero", pki.keyFile), key: certKey},
		{name: "cert_file not PEM", svc: pair(notPEM, pki.keyFile), key: certKey},
		{name: "key_file FIFO", svc: pair(pki.certFile, fifo), key: keyKey},
		{name: "key_file not PEM", svc: pair(pki.certFile, notPEM), key: keyKey},
		{name: "key_file of another cert", svc: pair(pki.caFile, pki.keyFile), key: certKey},
		{name: "discovery file dev-zero", svc: "discovery: {file: /dev/zero}", key: "services.users.discovery.file"},
		{name: "discovery file FIFO", svc: "discovery: {file: " + fifo + "}", key: "services.users.discovery.file"},
		{name: "discovery file 17MiB", svc: "discovery: {file: " + bigEndpoints + "}", key: "services.users.discovery.file"},
		{name: "discovery file missing", svc: "discovery: {file: missing.yaml}", key: "services.users.discovery.file"},
		{name: "split weights overflow", routes: split("2147483647", "2147483647"), key: weight0},
		{name: "split weights all zero", routes: split("0", "0"), key: "listeners[0].routes[0].split"},
		{name: "split weight -1", routes: split("-1", "1"), key: weight0},
		{name: "split weight 10001", routes: split("10001"), key: weight0},
		{name: "max_attempts 2147483647", svc: "retry: {max_attempts: 2147483647, base_delay: 1ns}", key: attempts},
		{name: "max_attempts 11", svc: "retry: {max_attempts: 11}", key: attempts},
		{name: "rps 1e-300", svc: "ratelimit: {rps: 1e-300}", key: rps},
		{name: "rps 0.0009", svc: "ratelimit: {rps: 0.0009}", key: rps},
		{name: "hedge max_extra 1000", svc: "retry: {hedge: {delay: 1ms, max_extra: 1000}}", key: "services.users.retry.hedge.max_extra"},
		{name: "max_body_buffer 100GiB", svc: "retry: {max_body_buffer: 100GiB}", key: "services.users.retry.max_body_buffer"},
		{name: "max_retry_after 1000h", svc: "retry: {max_retry_after: 1000h}", key: "services.users.retry.max_retry_after"},
		{name: "budget ttl 1ns", svc: "retry: {budget: {ttl: 1ns}}", key: "services.users.retry.budget.ttl"},
		{name: "burst 2e9", svc: "ratelimit: {rps: 1, burst: 2000000000}", key: "services.users.ratelimit.burst"},
		{name: "breaker open_timeout 1000h", svc: "breaker: {open_timeout: 1000h}", key: "services.users.breaker.open_timeout"},
		{name: "breaker half_open_requests 1e6", svc: "breaker: {half_open_requests: 1000000}", key: "services.users.breaker.half_open_requests"},
		{name: "discovery refresh 1ns", svc: "discovery: {dns: localhost:1, static: [], refresh: 1ns}", key: "services.users.discovery.refresh"},
		{name: "health_check interval 1ns", svc: "discovery: {static: [127.0.0.1:1], health_check: {path: /h, interval: 1ns}}", key: "services.users.discovery.health_check.interval"},
		{name: "dns host not a name", svc: "discovery: {dns: \"a..b:80\"}", key: "services.users.discovery.dns"},
		{name: "service timeout 1000h", svc: "timeout: 1000h", key: "services.users.timeout"},
		{name: "max_concurrent_requests 1e12", svc: "max_concurrent_requests: 1000000000000", key: "services.users.max_concurrent_requests"},
	}
}

// configFor is the one-service config of c on port-0 addresses.
func configFor(c badConfig) string {
	listener := "service: users"
	if c.routes != "" {
		listener = "routes: " + c.routes
	}
	var b strings.Builder
	fmt.Fprintf(&b, "admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, %s}]\nservices:\n  users:\n", listener)
	if !strings.Contains(c.svc, "discovery:") {
		b.WriteString("    discovery: {static: [127.0.0.1:1]}\n")
	}
	for line := range strings.Lines(c.svc) {
		b.WriteString("    " + strings.TrimSuffix(line, "\n") + "\n")
	}
	return b.String()
}

// TestCheckAndStartRefuseTheSameConfigs runs every bad config through
// -check and through start-up: both must exit 2 within a few seconds,
// naming the key, without a crash or a hang, so the two cannot drift.
func TestCheckAndStartRefuseTheSameConfigs(t *testing.T) {
	dir := t.TempDir()
	for _, c := range badConfigs(t, dir) {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(c.name)+".yaml")
			require.NoError(t, os.WriteFile(path, []byte(configFor(c)), 0o600))
			for _, mode := range []string{"check", "start"} {
				t.Run(mode, func(t *testing.T) {
					args := []string{"-config", path}
					if mode == "check" {
						args = append(args, "-check")
					}
					p := startProc(t, args...)
					assert.Equal(t, 2, p.exitCode(t, 5*time.Second), "exit code")
					out := p.out.String()
					assert.Contains(t, out, c.key+": ", "the problem names its key")
					assert.NotContains(t, out, "panic")
					assert.NotContains(t, out, "config OK")
				})
			}
		})
	}
}

// TestCheckAcceptsTheBoundsThemselves keeps the bounds inclusive: the
// extreme good values pass -check.
func TestCheckAcceptsTheBoundsThemselves(t *testing.T) {
	pki := newTestPKI(t)
	path := writeConfig(t, `
listeners:
  - address: 127.0.0.1:1
    routes: [{split: [{service: users, weight: 10000}, {service: users, weight: 0}]}]
services:
  users:
    discovery: {static: [127.0.0.1:2]}
    tls: {ca_file: `+pki.caFile+`, cert_file: `+pki.certFile+`, key_file: `+pki.keyFile+`}
    retry: {max_attempts: 10, hedge: {delay: 1ms, max_extra: 10}}
    ratelimit: {rps: 0.001}
`)
	p := startProc(t, "-config", path, "-check")
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
	assert.Contains(t, p.out.String(), "config OK")
}
