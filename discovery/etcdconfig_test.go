package discovery_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/fielderr"
)

// TestEtcdConfigValidate: each bad etcd setting is reported at its key
// path, and Etcd (so FromConfig) refuses what Validate refuses.
func TestEtcdConfigValidate(t *testing.T) {
	ok := discovery.Config{Etcd: &discovery.EtcdConfig{
		Endpoints: []string{"127.0.0.1:2379", "http://[::1]:2379", "https://etcd-1.internal:2379"},
		Prefix:    "/services/users/",
	}}
	require.NoError(t, ok.Validate())
	src, err := discovery.FromConfig(ok)
	require.NoError(t, err)
	assert.NotNil(t, src)

	bad := discovery.Config{Etcd: &discovery.EtcdConfig{
		Endpoints:   []string{"127.0.0.1", "unix://x:1", "http://h:2379/v3", "h:0"},
		DialTimeout: -time.Second,
	}}
	var got []string
	fielderr.Each(bad.Validate(), func(field, msg string) { got = append(got, field+": "+msg) })
	assert.Equal(t, []string{
		`etcd.endpoints[0]: address "127.0.0.1": want host:port`,
		`etcd.endpoints[1]: "unix://x:1": scheme must be http or https, got "unix"`,
		`etcd.endpoints[2]: "http://h:2379/v3": want host:port or http(s)://host:port, without a path`,
		`etcd.endpoints[3]: address "h:0": port must be a number in 1–65535`,
		"etcd.prefix: required: the key prefix whose keys are the endpoints, such as /services/users/",
		"etcd.dial_timeout: must be ≥ 0, got -1s",
	}, got)
	_, err = discovery.FromConfig(bad)
	assert.Error(t, err)

	var none []string
	fielderr.Each(discovery.Config{Etcd: &discovery.EtcdConfig{}}.Validate(), func(field, msg string) { none = append(none, field) })
	assert.Equal(t, []string{"etcd.endpoints", "etcd.prefix"}, none)

	two := discovery.Config{File: "e.yaml", Etcd: ok.Etcd}
	assert.ErrorContains(t, two.Validate(), "set one source, got file and etcd")
}
