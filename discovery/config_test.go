package discovery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/discovery"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    discovery.Config
		want []string // every FieldError, as Error() prints it
	}{
		{"static ok", discovery.Config{Static: []string{"127.0.0.1:80", "[::1]:8080", "users.internal:1"}}, nil},
		{"dns ok", discovery.Config{DNS: "users.internal:8080", Resolver: "127.0.0.1:53", Balancer: "ewma"}, nil},
		{"srv ok", discovery.Config{SRV: "_http._tcp.users.internal", Balancer: "least_request"}, nil},
		{"file ok", discovery.Config{File: "endpoints.yaml", HealthCheck: discovery.HealthCheckConfig{Path: "/healthz"}}, nil},
		{"no source", discovery.Config{}, []string{
			"discovery: no source: set one of static, dns, srv, file, etcd"}},
		{"two sources", discovery.Config{Static: []string{"127.0.0.1:80"}, DNS: "users:80"}, []string{
			"discovery: set one source, got static and dns"}},
		{"bad addresses", discovery.Config{Static: []string{"127.0.0.1", "127.0.0.1:0", ":80", "h:http", "a@evil:80"}}, []string{
			`discovery: static[0]: address "127.0.0.1": want host:port`,
			`discovery: static[1]: address "127.0.0.1:0": port must be a number in 1–65535`,
			`discovery: static[2]: address ":80": empty host`,
			`discovery: static[3]: address "h:http": port must be a number in 1–65535`,
			`discovery: static[4]: address "a@evil:80": bad character '@' in host`}},
		{"signed or too large port", discovery.Config{Static: []string{"127.0.0.1:+80", "127.0.0.1:65536"}}, []string{
			`discovery: static[0]: address "127.0.0.1:+80": port must be a number in 1–65535`,
			`discovery: static[1]: address "127.0.0.1:65536": port must be a number in 1–65535`}},
		{"one endpoint twice", discovery.Config{Static: []string{"127.0.0.1:8080", "[::1]:80", "Users.Internal:80", "127.0.0.1:08080", "[0:0::1]:080", "users.internal:80"}}, []string{
			`discovery: static[3]: "127.0.0.1:08080" is static[0] ("127.0.0.1:8080") again`,
			`discovery: static[4]: "[0:0::1]:080" is static[1] ("[::1]:80") again`,
			`discovery: static[5]: "users.internal:80" is static[2] ("Users.Internal:80") again`}},
		{"bad dns and resolver", discovery.Config{DNS: "users.internal", Resolver: "nope"}, []string{
			`discovery: dns: address "users.internal": want host:port`,
			`discovery: resolver: address "nope": want host:port`}},
		{"bad srv", discovery.Config{SRV: "users:80"}, []string{
			`discovery: srv: "users:80" is not an SRV name such as _http._tcp.users.internal`}},
		{"everything else", discovery.Config{
			Static:   []string{"127.0.0.1:80"},
			Refresh:  -time.Second,
			Balancer: "random",
			HealthCheck: discovery.HealthCheckConfig{
				Path: "healthz", Interval: -1, Timeout: -time.Millisecond},
		}, []string{
			"discovery: refresh: must be ≥ 0, got -1s",
			`discovery: balancer: unknown balancer "random": want round_robin, least_request or ewma`,
			`discovery: health_check.path: must start with /, got "healthz"`,
			"discovery: health_check.interval: must be ≥ 0, got -1ns",
			"discovery: health_check.timeout: must be ≥ 0, got -1ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *discovery.FieldError
				require.True(t, errors.As(e, &fe), "%T is not a *FieldError", e)
				got = append(got, fe.Error())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConfigFromYAML(t *testing.T) {
	var c discovery.Config
	require.NoError(t, yaml.Unmarshal([]byte(`
static: [127.0.0.1:8081, 127.0.0.1:8082]
refresh: 10s
balancer: ewma
health_check: {path: /healthz, interval: 250ms, timeout: 100ms}
`), &c))
	assert.Equal(t, discovery.Config{
		Static:      []string{"127.0.0.1:8081", "127.0.0.1:8082"},
		Refresh:     10 * time.Second,
		Balancer:    "ewma",
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: 250 * time.Millisecond, Timeout: 100 * time.Millisecond},
	}, c)
	assert.NoError(t, c.Validate())
}

func TestFromConfig(t *testing.T) {
	_, err := discovery.FromConfig(discovery.Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no source")

	_, err = discovery.FromConfig(discovery.Config{Static: []string{"127.0.0.1:1"}, File: "x.yaml"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "static and file")

	src, err := discovery.FromConfig(discovery.Config{Static: []string{"127.0.0.1:1", "127.0.0.1:2"}})
	require.NoError(t, err)
	var got []discovery.Endpoint
	src.Watch(context.Background(), func(eps []discovery.Endpoint, err error) {
		require.NoError(t, err)
		got = eps
	})
	assert.Equal(t, []discovery.Endpoint{{Address: "127.0.0.1:1", Weight: 1}, {Address: "127.0.0.1:2", Weight: 1}}, got)
}

func TestStaticRejectsBadAddress(t *testing.T) {
	var gotErr error
	discovery.Static("127.0.0.1:1", "nope").Watch(context.Background(), func(eps []discovery.Endpoint, err error) {
		assert.Nil(t, eps)
		gotErr = err
	})
	require.Error(t, gotErr)
	assert.Contains(t, gotErr.Error(), `"nope"`)
}

func TestNewServiceRejects(t *testing.T) {
	_, err := discovery.NewService("", discovery.Static("127.0.0.1:1"), discovery.Config{})
	assert.ErrorContains(t, err, "name is empty")
	_, err = discovery.NewService("users", nil, discovery.Config{})
	assert.ErrorContains(t, err, "nil Source")
	_, err = discovery.NewService("users", discovery.Static("127.0.0.1:1"), discovery.Config{Balancer: "fastest"})
	assert.ErrorContains(t, err, "balancer: unknown balancer")
}
