package discovery_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// stepClock is a discovery.Clock that the test steps: a goroutine that
// sleeps on it reports the wait on sleeps and blocks until the test calls
// step (or its context ends), so a health-check round or a DNS refresh runs
// exactly when the test says, and none runs on its own.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps chan time.Duration
	wake   chan struct{}
}

func newStepClock() *stepClock {
	return &stepClock{
		now:    time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		sleeps: make(chan time.Duration),
		wake:   make(chan struct{}),
	}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case c.sleeps <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.wake:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	c.now = c.now.Add(max(d, 0))
	c.mu.Unlock()
	return nil
}

// sleeping waits until the clock's sleeper asks to wait and returns how
// long it asked for.
func (c *stepClock) sleeping(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.sleeps:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("nothing slept on the clock")
		return 0
	}
}

// step ends the current sleep and waits until the sleeper sleeps again: one
// more health-check round or lookup has run in between. It returns the
// next wait asked for.
func (c *stepClock) step(t *testing.T) time.Duration {
	t.Helper()
	select {
	case c.wake <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sleeping on the clock")
	}
	return c.sleeping(t)
}

var _ discovery.Clock = (*stepClock)(nil)

func TestHealthChecksRunOnTheClock(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusOK
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	})
	clk := newStepClock()
	s := newService(t, discovery.Static(up.addr()), discovery.Config{
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: time.Hour},
	}, discovery.WithClock(clk))
	d := clk.sleeping(t) // the first round is done
	assert.Equal(t, time.Hour, d, "the next round an interval after this one started")
	assert.Equal(t, int64(1), up.hits.Load(), "one round, one check")
	require.True(t, s.Endpoints()[0].Ready)

	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	clk.step(t)
	assert.Equal(t, int64(2), up.hits.Load())
	require.False(t, s.Endpoints()[0].Ready, "one failed check ejects")
	_, err := s.Pick(t.Context())
	require.ErrorIs(t, err, discovery.ErrNoEndpoints)

	mu.Lock()
	status = http.StatusNoContent
	mu.Unlock()
	clk.step(t)
	assert.Equal(t, int64(3), up.hits.Load())
	assert.True(t, s.Endpoints()[0].Ready, "one passed check puts it back")
}

func TestDNSRefreshRunsOnTheClock(t *testing.T) {
	d := startDNS(t)
	d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.1")
	src, err := discovery.DNS("users.test:8080", d.Addr, time.Hour)
	require.NoError(t, err)
	clk := newStepClock()
	s := newService(t, src, discovery.Config{}, discovery.WithClock(clk))
	require.Equal(t, time.Duration(0), clk.sleeping(t), "the first lookup at once")
	assert.Equal(t, time.Hour, clk.step(t), "then one every refresh")
	assert.Equal(t, []string{"10.0.0.1:8080"}, statusAddrs(s))

	queries := d.Queries("udp", "users.test", dns.TypeA)
	d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.2")
	assert.Equal(t, []string{"10.0.0.1:8080"}, statusAddrs(s), "no lookup before the clock says")
	assert.Equal(t, queries, d.Queries("udp", "users.test", dns.TypeA))
	clk.step(t)
	assert.Equal(t, []string{"10.0.0.2:8080"}, statusAddrs(s))
	assert.Greater(t, d.Queries("udp", "users.test", dns.TypeA), queries)
}

func statusAddrs(s *discovery.Service) []string {
	var out []string
	for _, e := range s.Endpoints() {
		out = append(out, e.Address)
	}
	return out
}

// TestSilentWithoutLogger: a Service given no WithLogger writes nothing to
// slog.Default(), though it has endpoint changes, a source error and a
// failing health check to tell. It used to log them at INFO and WARN to
// slog.Default() in every program that used the package.
func TestSilentWithoutLogger(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	bad := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	src := newSetSource()
	clk := newStepClock()
	s, err := discovery.NewService("users", src, discovery.Config{
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: time.Hour},
	}, discovery.WithClock(clk))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	src.Set(t, bad.addr())
	src.send(t, nil, assert.AnError)
	clk.sleeping(t)
	clk.step(t) // a round that sees the endpoint fail
	require.False(t, s.Endpoints()[0].Ready)
	src.Set(t, bad.addr(), "127.0.0.1:1")
	assert.Empty(t, buf.String())
}
