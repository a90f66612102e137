package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// RunReloading, driven by the test's own reload channel: a value reloads
// the file (the new upstream serves), a bad file keeps the old config, and
// cancelling ctx drains and returns nil.
func TestRunReloadingOnSignal(t *testing.T) {
	one := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "one") }))
	defer one.Close()
	two := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "two") }))
	defer two.Close()
	path := filepath.Join(t.TempDir(), "ambassador.yaml")
	write := func(upstream string) {
		doc := "admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: svc}]\n" +
			"services:\n  svc: {discovery: {static: [" + upstream + "]}}\n"
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	}
	write(one.Listener.Addr().String())
	cfg, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	srv, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan os.Signal)
	done := make(chan error, 1)
	go func() { done <- srv.RunReloading(ctx, path, false, reload) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("RunReloading: %v", err)
	}
	c := client(t)
	url := "http://" + srv.Addrs()[0].String() + "/"
	body := func() string { _, _, b := fetch(t, c, http.MethodGet, url, ""); return b }
	require.Equal(t, "one", body())

	write(two.Listener.Addr().String())
	reload <- syscall.SIGHUP
	require.Eventually(t, func() bool { return body() == "two" }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte("listeners: [\n"), 0o600))
	reload <- syscall.SIGHUP
	reload <- syscall.SIGHUP // received only after the bad reload was handled
	assert.Equal(t, "two", body(), "a bad file keeps the config in use")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("RunReloading did not return after cancel")
	}
}

// A reload whose listeners are not the addresses the process started with
// is refused with the key of the listener that is new, or the address that
// is gone; the same addresses in another order are a valid reload.
func TestReloadRefusesAnotherSetOfListeners(t *testing.T) {
	config := func(addrs ...string) *proxy.Config {
		t.Helper()
		doc := "admin: {address: 127.0.0.1:0}\nlisteners:\n"
		for _, a := range addrs {
			doc += "  - {address: " + a + ", service: svc}\n"
		}
		doc += "services:\n  svc: {discovery: {static: [127.0.0.1:9]}}\n"
		cfg, err := proxy.ParseConfig([]byte(doc), "")
		require.NoError(t, err)
		return cfg
	}
	const a, b = "127.0.0.1:7001", "127.0.0.1:7002"
	srv, err := proxy.NewServer(config(a, b), proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	for _, tc := range []struct {
		name    string
		addrs   []string
		wantErr string
	}{
		{"added", []string{a, b, "127.0.0.1:7003"}, "listeners[2].address: 127.0.0.1:7003 is not a listener the process started with"},
		{"replaced", []string{a, "127.0.0.1:7009"}, "listeners[1].address: 127.0.0.1:7009 is not a listener the process started with"},
		{"removed", []string{b}, "listeners: no listener on 127.0.0.1:7001, which the process started with"},
		{"reordered", []string{b, a}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := srv.Reload(config(tc.addrs...))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Contains(t, err.Error(), "cannot change without a restart")
		})
	}
}
