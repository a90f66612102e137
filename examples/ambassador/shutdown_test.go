package main

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freshClient makes every request on a new connection, so a request shows
// whether the listener still accepts.
func freshClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// readyz returns the status and body of the admin's /readyz.
func readyz(t *testing.T, c *http.Client, p *proc) (int, string, error) {
	t.Helper()
	resp, err := c.Get(p.admin + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitShuttingDown waits until /readyz answers 503 "shutting down".
func waitShuttingDown(t *testing.T, c *http.Client, p *proc) {
	t.Helper()
	require.Eventually(t, func() bool {
		code, body, err := readyz(t, c, p)
		return err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	}, 5*time.Second, 20*time.Millisecond, "/readyz turns 503 after SIGTERM")
}

// TestSIGTERMShutdownDelayServesNewConnections: with shutdown_delay: 2s a
// connection opened 1s after SIGTERM is served, /readyz answers 503 during
// the delay, and the process exits 0 once the delay and the drain end.
func TestSIGTERMShutdownDelayServesNewConnections(t *testing.T) {
	up := textUpstream(t, "still here")
	p, lis := serveOne(t, "app", hostOf(up.URL), "", "limits: {shutdown_delay: 2s, drain_timeout: 5s}")
	c := freshClient(t)

	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	waitShuttingDown(t, c, p)
	<-time.After(time.Until(start.Add(time.Second))) // the "1 s after the signal"

	resp, body := get(t, c, "http://"+lis+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "still here", body)
	code, rbody, err := readyz(t, c, p)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, rbody, "shutting down")
	assert.Less(t, time.Since(start), 2*time.Second, "the checks ran inside the delay")

	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the process waited for shutdown_delay")
}

// TestSecondSIGTERMEndsShutdownDelay: a second SIGTERM during a long
// shutdown_delay makes the process drain and exit 0 at once.
func TestSecondSIGTERMEndsShutdownDelay(t *testing.T) {
	up := textUpstream(t, "ok")
	p, lis := serveOne(t, "app", hostOf(up.URL), "", "limits: {shutdown_delay: 1h}")
	c := freshClient(t)
	p.signal(t, syscall.SIGTERM)
	waitShuttingDown(t, c, p)
	resp, body := get(t, c, "http://"+lis+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", body)

	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
	assert.Less(t, time.Since(start), 5*time.Second, "the second SIGTERM ended the delay")
}
