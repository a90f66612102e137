package proxy_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/discovery"
)

// base is a minimal valid config; cases append lines to it, so their line
// numbers start at 6.
const base = `listeners:
  - {address: 127.0.0.1:10001, service: users}
services:
  users:
    discovery: {static: [127.0.0.1:8081]}
`

// want is one expected problem: exact path and line, message substring.
type want struct {
	path string
	line int
	msg  string
}

func parseProblems(t *testing.T, doc string) []proxy.Problem {
	t.Helper()
	c, err := proxy.ParseConfig([]byte(doc), "")
	require.Error(t, err, "config should be rejected:\n%s", doc)
	assert.Nil(t, c)
	var ce *proxy.ConfigError
	require.ErrorAs(t, err, &ce)
	return ce.Problems
}

func TestParseConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []want
	}{
		{"yaml syntax", "admin: b\n c: d\n", []want{{"", 2, "invalid YAML: mapping values are not allowed in this context"}}},
		{"unknown top key", base + "listners: []\n", []want{{"listners", 6, "unknown key (did you mean listeners?)"}}},
		{"unknown nested key", base + "    retry:\n      max_atempts: 3\n", []want{{"services.users.retry.max_atempts", 7, "unknown key (did you mean max_attempts?)"}}},
		{"unknown key far from any", base + "    wibble: 1\n", []want{{"services.users.wibble", 6, "unknown key"}}},
		{"bad duration", base + "    timeout: abc\n", []want{{"services.users.timeout", 6, `cannot decode "abc" as a duration`}}},
		{"duration without unit", base + "    timeout: 5\n", []want{{"services.users.timeout", 6, `missing unit, e.g. "5s"`}}},
		{"duration as mapping", base + "    timeout: {a: 1}\n", []want{{"services.users.timeout", 6, "expected a duration"}}},
		{"bad size", base + "    retry: {max_body_buffer: 12XB}\n", []want{{"services.users.retry.max_body_buffer", 6, `cannot decode "12XB" as a size`}}},
		{"negative size", base + "limits: {max_header_bytes: -1}\n", []want{{"limits.max_header_bytes", 6, "negative"}}},
		{"int as string", base + "    max_connections: lots\n", []want{{"services.users.max_connections", 6, `cannot decode "lots" as an integer`}}},
		{"int out of range", base + "    max_connections: 99999999999999999999\n", []want{{"services.users.max_connections", 6, "as an integer"}}},
		{"bool as string", base + "    retry: {retry_non_idempotent: perhaps}\n", []want{{"services.users.retry.retry_non_idempotent", 6, `cannot decode "perhaps" as a boolean`}}},
		{"float as string", base + "    ratelimit: {rps: fast}\n", []want{{"services.users.ratelimit.rps", 6, `cannot decode "fast" as a number`}}},
		{"float infinite", base + "    ratelimit: {rps: .inf}\n", []want{{"services.users.ratelimit.rps", 6, "finite"}}},
		{"list as scalar", base + "    retry: {retry_on: reset}\n", []want{{"services.users.retry.retry_on", 6, "expected a list"}}},
		{"list item type", base + "    retry: {retriable_status_codes: [503, x]}\n", []want{{"services.users.retry.retriable_status_codes[1]", 6, "as an integer"}}},
		{"mapping as scalar", "admin: 9901\n" + base, []want{{"admin", 1, "expected a mapping"}}},
		{"string as mapping", base + "    protocol: {a: b}\n", []want{{"services.users.protocol", 6, "expected a string"}}},
		{"duplicate key", base + "    timeout: 1s\n    timeout: 2s\n", []want{{"services.users.timeout", 7, "duplicate key (first at line 6)"}}},
		{"policy validate", base + "    retry: {max_attempts: -1}\n", []want{{"services.users.retry.max_attempts", 6, "must be ≥ 1"}}},
		{"ratelimit without rps", base + "    ratelimit: {burst: 10}\n", []want{{"services.users.ratelimit.rps", 6, ""}}},
		{"bare ratelimit", base + "    ratelimit:\n", []want{{"services.users.ratelimit.rps", 6, ""}}},
		{"no discovery source", base + "  orders:\n    timeout: 1s\n", []want{{"services.orders.discovery", 6, "no source"}}},
		{"two discovery sources", base + "  orders:\n    discovery: {static: [127.0.0.1:1], dns: orders:80}\n",
			[]want{{"services.orders.discovery", 7, "set one source, got static and dns"}}},
		{"bad static address", base + "  orders:\n    discovery: {static: [nope]}\n", []want{{"services.orders.discovery.static[0]", 7, "host:port"}}},
		{"unknown protocol", base + "    protocol: http3\n", []want{{"services.users.protocol", 6, `unknown protocol "http3": want http1, h2c, h2 or tcp`}}},
		{"tls cert without key", base + "    tls: {cert_file: c.pem}\n", []want{{"services.users.tls.key_file", 6, "required with cert_file"}}},
		{"tls key without cert", base + "    tls: {key_file: k.pem}\n", []want{{"services.users.tls.cert_file", 6, "required with key_file"}}},
		{"h2c with tls", base + "    protocol: h2c\n    tls: {ca_file: ca.pem}\n", []want{{"services.users.tls", 7, "cleartext"}}},
		{"negative timeout", base + "    timeout: -1s\n", []want{{"services.users.timeout", 6, "must be ≥ 0"}}},
		{"negative max_concurrent_requests", base + "    max_concurrent_requests: -2\n", []want{{"services.users.max_concurrent_requests", 6, "must be ≥ 0"}}},
		{"name differs from key", base + "    name: people\n", []want{{"services.users.name", 6, `"people" differs from the service's key "users"`}}},
		{"bad service name", base + "  Bad_Name!:\n    discovery: {static: [127.0.0.1:1]}\n", []want{{`services["Bad_Name!"].name`, 6, "not a valid host name"}}},
		{"negative limit", base + "limits: {drain_timeout: -5s}\n", []want{{"limits.drain_timeout", 6, "must be ≥ 0"}}},
		{"wildcard overlaps a listener", base + "admin: {address: 0.0.0.0:10001}\n", []want{{"listeners[0].address", 2, "already used by admin.address"}}},
		{"bad admin address", base + "admin: {address: localhost}\n", []want{{"admin.address", 6, `"localhost" is not host:port`}}},
		{"two documents", base + "---\nadmin: {}\n", []want{{"", 6, "more than one YAML document"}}},
		{"merge of a scalar", base + "    <<: 5\n", []want{{"services.users", 6, "merge key"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseProblems(t, tc.doc)
			require.Len(t, got, len(tc.want), "problems: %v", got)
			for i, w := range tc.want {
				assert.Equal(t, w.path, got[i].Path)
				assert.Equal(t, w.line, got[i].Line, "line of %s", w.path)
				assert.Contains(t, got[i].Msg, w.msg)
			}
		})
	}
}

func TestParseConfigListenerAndRouteProblems(t *testing.T) {
	doc := `admin: {address: 127.0.0.1:10001}
listeners:
  - address: 127.0.0.1:10001
    service: users
  - address: 127.0.0.1:10002
    service: pay
  - address: 127.0.0.1:10002
  - address: 127.0.0.1:10003
    service: users
    routes: [{service: users}]
  - address: 127.0.0.1:10004
    routes:
      - {host: a, service: nope}
      - {host: b}
      - {host: c, service: users, split: [{service: users, weight: 1}]}
      - path_prefix: pay/
        split: [{service: users, weight: -1}, {service: ghost, weight: 0}]
      - split: [{service: users, weight: 0}]
      - host: http://x/
        service: users
services:
  users:
    discovery: {static: [127.0.0.1:8081]}
`
	got := parseProblems(t, doc)
	var lines []string
	for _, p := range got {
		lines = append(lines, p.String())
	}
	assert.Equal(t, []string{
		"listeners[0].address: address 127.0.0.1:10001 is already used by admin.address (line 3)",
		`listeners[1].service: no service "pay" (line 6)`,
		"listeners[2].address: address 127.0.0.1:10002 is already used by listeners[1].address (line 7)",
		"listeners[2]: set service or routes (line 7)",
		"listeners[3]: set service or routes, not both (line 8)",
		`listeners[4].routes[0].service: no service "nope" (line 13)`,
		"listeners[4].routes[1]: set service or split (line 14)",
		"listeners[4].routes[2]: set service or split, not both (line 15)",
		`listeners[4].routes[3].path_prefix: must start with "/", got "pay/" (line 16)`,
		"listeners[4].routes[3].split[0].weight: must be an integer between 0 and 10000, got -1 (line 17)",
		`listeners[4].routes[3].split[1].service: no service "ghost" (line 17)`,
		"listeners[4].routes[3].split: weights are all zero; at least one must be positive (line 17)",
		"listeners[4].routes[4].split: weights are all zero; at least one must be positive (line 18)",
		`listeners[4].routes[5].host: must be a host name (no scheme or path), got "http://x/" (line 19)`,
	}, lines)
}

func TestParseConfigReportsEveryProblemSortedByLine(t *testing.T) {
	doc := `services:
  users:
    timeout: abc
    retry:
      max_atempts: 3
    discovery: {static: [127.0.0.1:8081], dns: users:80}
    ratelimit:
listeners:
  - address: 127.0.0.1:10001
    service: pay
foo: 1
`
	_, err := proxy.ParseConfig([]byte(doc), "")
	require.Error(t, err)
	assert.Equal(t, strings.Join([]string{
		`services.users.timeout: cannot decode "abc" as a duration (line 3)`,
		`services.users.retry.max_atempts: unknown key (did you mean max_attempts?) (line 5)`,
		`services.users.discovery: set one source, got static and dns (line 6)`,
		`services.users.ratelimit.rps: ` + problemMsg(t, err, "services.users.ratelimit.rps") + ` (line 7)`,
		`listeners[0].service: no service "pay" (line 10)`,
		`foo: unknown key (line 11)`,
	}, "\n"), err.Error())
}

func problemMsg(t *testing.T, err error, path string) string {
	t.Helper()
	var ce *proxy.ConfigError
	require.ErrorAs(t, err, &ce)
	for _, p := range ce.Problems {
		if p.Path == path {
			return p.Msg
		}
	}
	t.Fatalf("no problem at %s in %v", path, err)
	return ""
}

func TestParseConfigEmptyAndNoListeners(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "services: {}\n"} {
		got := parseProblems(t, doc)
		require.Len(t, got, 1, "%q", doc)
		assert.Equal(t, "listeners", got[0].Path)
		assert.Equal(t, "at least one listener is required", got[0].Msg)
	}
}

func TestLoadConfigFull(t *testing.T) {
	c, err := proxy.LoadConfig(filepath.Join("testdata", "full.yaml"))
	require.NoError(t, err)
	dir, err := filepath.Abs("testdata")
	require.NoError(t, err)

	assert.Equal(t, "127.0.0.1:9901", c.AdminAddress())
	require.Len(t, c.Listeners, 2)
	assert.Equal(t, "users", c.Listeners[0].Service)
	assert.Equal(t, []proxy.SplitConfig{{Service: "reviews-v1", Weight: 90}, {Service: "reviews-v2", Weight: 10}},
		c.Listeners[1].Routes[2].Split)

	users := c.Services["users"]
	assert.Equal(t, "users", users.Name, "the services key fills Name")
	assert.Equal(t, discovery.Config{Static: []string{"127.0.0.1:8081", "127.0.0.1:8082"}, Balancer: "ewma"}, users.Discovery)
	assert.Equal(t, 10*time.Second, users.Timeout)
	assert.Equal(t, 64, users.MaxConnections)
	assert.Equal(t, 100, users.MaxConcurrentRequests)
	require.NotNil(t, users.Retry)
	assert.Equal(t, 3, users.Retry.MaxAttempts)
	assert.Equal(t, 2*time.Second, users.Retry.PerTryTimeout)
	assert.Equal(t, proxy.Size(1<<20), users.Retry.MaxBodyBuffer)
	assert.Equal(t, []string{"connect-failure", "gateway-error"}, users.Retry.RetryOn)
	assert.InDelta(t, 0.2, users.Retry.Budget.Ratio, 1e-9)
	require.NotNil(t, users.RateLimit)
	assert.InDelta(t, 100, users.RateLimit.RPS, 1e-9)
	assert.Equal(t, 50*time.Millisecond, users.RateLimit.MaxWait)
	require.NotNil(t, users.Breaker)
	assert.Equal(t, 5, users.Breaker.ConsecutiveFailures)

	pay := c.Services["payments"]
	assert.Equal(t, filepath.Join(dir, "endpoints.yaml"), pay.Discovery.File, "relative paths resolve against the file's dir")
	assert.Equal(t, ambassador.TLSConfig{
		CAFile:     filepath.Join(dir, "ca.pem"),
		CertFile:   filepath.Join(dir, "client.pem"),
		KeyFile:    filepath.Join(dir, "client-key.pem"),
		ServerName: "payments.internal",
	}, pay.TLS)
	require.NotNil(t, pay.Retry, "retry: {} is the policy with defaults")
	assert.Zero(t, *pay.Retry)
	assert.Nil(t, pay.Breaker, "an absent section leaves the policy out")
	assert.Nil(t, pay.RateLimit)

	v2 := c.Services["reviews-v2"]
	require.NotNil(t, v2.Breaker, "a bare breaker: key is the policy with defaults")
	assert.Zero(t, *v2.Breaker)
	assert.Equal(t, "/healthz", v2.Discovery.HealthCheck.Path)

	assert.Equal(t, proxy.Size(64<<10), c.Limits.MaxHeaderBytes)
	assert.Equal(t, 30*time.Second, c.Limits.DrainTimeoutOrDefault())
	assert.NoError(t, c.Validate(), "a parsed config is valid")
}

func TestParseConfigDefaultsAndAnchors(t *testing.T) {
	doc := `x-policies: &retry
  max_attempts: 4
listeners:
  - {address: 127.0.0.1:10001, service: a}
services:
  a: &svc
    discovery: {static: [127.0.0.1:8081]}
    retry: *retry
  b:
    <<: *svc
    timeout: 2s
`
	_, err := proxy.ParseConfig([]byte(doc), "/etc")
	// x-policies is not a key of the config.
	require.Error(t, err)
	assert.Equal(t, "x-policies: unknown key (line 1)", err.Error())

	doc = strings.Replace(doc, "x-policies: &retry\n  max_attempts: 4\n", "", 1)
	doc = strings.Replace(doc, "retry: *retry", "retry: &retry {max_attempts: 4}", 1)
	c, err := proxy.ParseConfig([]byte(doc), "/etc")
	require.NoError(t, err)
	assert.Equal(t, 4, c.Services["b"].Retry.MaxAttempts, "merge keys copy the anchored service")
	assert.Equal(t, 2*time.Second, c.Services["b"].Timeout)
	assert.Equal(t, "b", c.Services["b"].Name)
	assert.Equal(t, "127.0.0.1:9901", c.AdminAddress())
	assert.Equal(t, proxy.Size(64<<10), c.Limits.MaxHeaderBytesOrDefault())
	assert.Equal(t, 10*time.Second, c.Limits.ReadHeaderTimeoutOrDefault())
	assert.Zero(t, c.Services["a"].Timeout, "0: the stack's ambassador.DefaultTimeout")
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := proxy.LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
	var ce *proxy.ConfigError
	assert.False(t, errors.As(err, &ce))
}

func TestLoadConfigRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "amb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(base+"    discovery: {file: eps/users.yaml}\n"), 0o600))
	_, err := proxy.LoadConfig(path)
	require.Error(t, err, "duplicate discovery key")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(base, "{static: [127.0.0.1:8081]}", "{file: eps/users.yaml}", 1)), 0o600))
	_, err = proxy.LoadConfig(path)
	require.ErrorContains(t, err, "services.users.discovery.file: ", "LoadConfig reads the endpoint file")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "eps"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "eps", "users.yaml"), []byte("- {address: 127.0.0.1:8081}\n"), 0o600))
	c, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "eps", "users.yaml"), c.Services["users"].Discovery.File)
}

func TestConfigValidateInCode(t *testing.T) {
	c := &proxy.Config{
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:1", Service: "users"}},
		Services: map[string]ambassador.ServiceConfig{
			"users": {Name: "users", Discovery: discovery.Config{Static: []string{"127.0.0.1:2"}}},
			"pay":   {Discovery: discovery.Config{Static: []string{"127.0.0.1:3"}}},
		},
	}
	err := c.Validate()
	require.Error(t, err)
	assert.Equal(t, `services.pay.name: "" differs from the service's key "pay"`, err.Error())
}

func TestServiceConfigValidate(t *testing.T) {
	err := ambassador.ServiceConfig{Protocol: "spdy", TLS: ambassador.TLSConfig{CertFile: "c"}}.Validate()
	require.Error(t, err)
	assert.Equal(t, strings.Join([]string{
		"name: required: the logical host the service answers for",
		"discovery: no source: set one of static, dns, srv, file, etcd",
		`protocol: unknown protocol "spdy": want http1, h2c, h2 or tcp`,
		"tls.key_file: required with cert_file",
	}, "\n"), err.Error())
}
