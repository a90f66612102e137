package proxy_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// TestTranscodeConfigErrors: a transcode section names a gRPC service, on
// a listener with service: or a route with service:, and its
// descriptor_set is read as start-up reads it: each problem at its key.
func TestTranscodeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	healthDescriptorSet(t, dir, "health.pb")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.pb"), []byte("\xff\xff not a descriptor set"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.pb"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big.pb"), make([]byte, proxy.MaxDescriptorSetSize+1), 0o600))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.pb"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o700))

	const services = "services:\n  g: {protocol: h2c, discovery: {static: [127.0.0.1:1]}}\n" +
		"  h: {protocol: h2, discovery: {static: [127.0.0.1:2]}}\n" +
		"  web: {discovery: {static: [127.0.0.1:3]}}\n"
	listener := func(l string) string { return "listeners:\n  - " + l + "\n" + services }
	cases := []struct {
		name, yml, path, msg string
	}{
		{"http1 service", listener("{address: 127.0.0.1:10001, service: web, transcode: {}}"),
			"listeners[0].service", `transcode: needs a gRPC service (protocol h2c or h2); "web" has protocol http1`},
		{"listener with routes", listener("{address: 127.0.0.1:10001, routes: [{service: g}], transcode: {}}"),
			"listeners[0].transcode", "needs service:, not routes"},
		{"route to http1", listener("{address: 127.0.0.1:10001, routes: [{service: web, transcode: {}}]}"),
			"listeners[0].routes[0].service", `"web" has protocol http1`},
		{"route with split", listener("{address: 127.0.0.1:10001, routes: [{split: [{service: g, weight: 1}], transcode: {}}]}"),
			"listeners[0].routes[0].transcode", "needs service:, not split"},
		{"missing file", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor_set: nope.pb}}"),
			"listeners[0].transcode.descriptor_set", "no such file"},
		{"not a descriptor set", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor_set: junk.pb}}"),
			"listeners[0].transcode.descriptor_set", "not a FileDescriptorSet"},
		{"empty set", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor_set: empty.pb}}"),
			"listeners[0].transcode.descriptor_set", "no files"},
		{"too large", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor_set: big.pb}}"),
			"listeners[0].transcode.descriptor_set", "too large"},
		{"fifo", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor_set: fifo.pb}}"),
			"listeners[0].transcode.descriptor_set", "not a regular file"},
		{"directory", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor_set: adir}}"),
			"listeners[0].transcode.descriptor_set", "not a regular file"},
		{"route file", listener("{address: 127.0.0.1:10001, routes: [{service: h, transcode: {descriptor_set: junk.pb}}]}"),
			"listeners[0].routes[0].transcode.descriptor_set", "not a FileDescriptorSet"},
		{"unknown key", listener("{address: 127.0.0.1:10001, service: g, transcode: {descriptor: x}}"),
			"listeners[0].transcode.descriptor", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yml), 0o600))
			var ce *proxy.ConfigError
			within(t, func() {
				_, err := proxy.LoadConfig(path)
				require.True(t, errors.As(err, &ce), "%v", err)
			})
			require.Len(t, ce.Problems, 1, ce.Error())
			assert.Equal(t, tc.path, ce.Problems[0].Path)
			assert.Contains(t, ce.Problems[0].Msg, tc.msg)
			assert.Positive(t, ce.Problems[0].Line)
		})
	}
	// The good ones: reflection on h2c and h2, a descriptor set on a route.
	ok := listener("{address: 127.0.0.1:10001, service: g, transcode: {}}") +
		"  x: {protocol: h2c, discovery: {static: [127.0.0.1:4]}}\n"
	path := filepath.Join(dir, "ok.yaml")
	require.NoError(t, os.WriteFile(path, []byte(ok), 0o600))
	_, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	ok = listener("{address: 127.0.0.1:10001, routes: [{service: h, transcode: {descriptor_set: health.pb}}, {service: web}]}")
	require.NoError(t, os.WriteFile(path, []byte(ok), 0o600))
	c, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "health.pb"), c.Listeners[0].Routes[0].Transcode.DescriptorSet, "relative to the config's directory")
}
