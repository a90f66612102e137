package ambassador_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

// poolSize is how many idle connections the tests below leave in the base
// transport's pool (its MaxIdleConnsPerHost is 256).
const poolSize = 100

// dropUpstream is a raw upstream that answers GETs normally while filling,
// holding each answer until fill requests are in flight at once (so they
// arrive on fill distinct connections), and once drop is set reads the next
// request on each connection, counts it and closes without answering.
type dropUpstream struct {
	*rawUpstream
	fill     int64
	arrived  atomic.Int64
	full     chan struct{}
	fullOnce sync.Once
	drop     atomic.Bool
	dropped  atomic.Int64 // requests read in drop mode
}

func newDropUpstream(t *testing.T, fill int) *dropUpstream {
	d := &dropUpstream{fill: int64(fill), full: make(chan struct{})}
	d.rawUpstream = newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := u.ReadRequest(br); err != nil {
				return
			}
			if d.drop.Load() {
				d.dropped.Add(1)
				return // read it, close without a byte of answer
			}
			if d.arrived.Add(1) >= d.fill {
				d.fullOnce.Do(func() { close(d.full) })
			}
			select {
			case <-d.full:
			case <-time.After(wireTimeout):
				t.Errorf("pool fill: only %d of %d requests in flight", d.arrived.Load(), d.fill)
				return
			}
			writeResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return d
}

// fillPool sends d.fill concurrent GETs through rt to url and checks they
// all succeeded on as many connections; their connections then go idle.
func (d *dropUpstream) fillPool(t *testing.T, rt http.RoundTripper, url string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, d.fill)
	for range d.fill {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := send(t, rt, http.MethodGet, url, nil, "")
			if err == nil && code != http.StatusOK {
				err = errors.New(http.StatusText(code))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int(d.fill), d.Conns(), "one connection per concurrent request")
	d.drop.Store(true)
}

// One GET that the upstream reads and drops on every pooled connection
// reaches it at most twice through NewTransport without a retry policy: the
// first send and net/http's one re-send on another idle connection. Before
// the fix net/http walked the whole pool (101 arrivals with 100 idle
// connections).
func TestResendBoundedWithoutRetry(t *testing.T) {
	up := newDropUpstream(t, poolSize)
	s := newTransport(t, ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{up.Addr()}}}, quietLogs)
	up.fillPool(t, s, "http://users/fill")

	_, err := send(t, s, http.MethodGet, "http://users/once", nil, "")
	require.Error(t, err)
	t.Logf("arrivals: %d, error: %v", up.dropped.Load(), err)
	assert.LessOrEqual(t, up.dropped.Load(), int64(2), "arrivals of one GET")
	assert.ErrorIs(t, err, ambassador.ErrResendLimit)
	assert.NotErrorIs(t, err, context.Canceled, "not mistaken for the caller going away")
}

// With retry max_attempts 3 every attempt is a fresh RoundTrip of the base
// transport and may use its one re-send: at most 3 × 2 arrivals.
func TestResendBoundedWithRetry(t *testing.T) {
	up := newDropUpstream(t, poolSize)
	metrics := newStackMetrics(t)
	s := newTransport(t, ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{up.Addr()}},
		Retry:     &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}},
		quietLogs, ambassador.WithMeterProvider(metrics.mp))
	up.fillPool(t, s, "http://users/fill")

	_, err := send(t, s, http.MethodGet, "http://users/once", nil, "")
	require.Error(t, err)
	assert.ErrorIs(t, err, ambassador.ErrResendLimit)
	t.Logf("arrivals: %d", up.dropped.Load())
	assert.LessOrEqual(t, up.dropped.Load(), int64(3*2), "arrivals of one GET with max_attempts 3")
	// Each stopped attempt was a reset to the policy: retried, then exhausted.
	out := metrics.retryOutcomes(t)
	assert.Equal(t, int64(2), out[retry.OutcomeRetried], "outcomes %v", out)
	assert.Equal(t, int64(1), out[retry.OutcomeExhausted], "outcomes %v", out)
}

// Through the ambassador process the same GET gets 502 upstream_reset after
// at most two arrivals.
func TestResendBoundedThroughAmbassador(t *testing.T) {
	up := newDropUpstream(t, poolSize)
	addr := throughAmbassador(t, up.Addr())
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	up.fillPool(t, tr, "http://"+addr+"/fill")

	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/once")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Equal(t, proxy.ReasonUpstreamReset, resp.Header.Get(proxy.HeaderError))
	t.Logf("arrivals: %d", up.dropped.Load())
	assert.LessOrEqual(t, up.dropped.Load(), int64(2), "arrivals of one GET")
}

// throughAmbassador runs the ambassador process (package proxy) with one
// listener in front of service "up" at endpoint until the test ends, and
// returns the listener's host:port.
func throughAmbassador(t *testing.T, endpoint string) string {
	t.Helper()
	doc := "admin: {address: 127.0.0.1:0}\nlisteners:\n  - {address: 127.0.0.1:0, service: up}\n" +
		"services:\n  up:\n    discovery: {static: [" + endpoint + "]}\n"
	cfg, err := proxy.ParseConfig([]byte(doc), "")
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return s.Addrs()[0].String()
}

// The guard composes with a trace the caller installed: the caller's
// GotConn still fires for every connection the request takes.
func TestResendGuardKeepsCallerTrace(t *testing.T) {
	srv := upstream(t, "a")
	s := newTransport(t, ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}}, quietLogs)
	var got atomic.Int64
	ctx := withGotConnCounter(context.Background(), &got)
	for range 2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/x", nil)
		require.NoError(t, err)
		resp, err := s.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	assert.Equal(t, int64(2), got.Load())
}

// withGotConnCounter installs a caller's own trace that counts GotConn.
func withGotConnCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { n.Add(1) },
	})
}

// refuseAllH2C is an h2c upstream that answers every stream with
// RST_STREAM REFUSED_STREAM and counts the streams it was offered.
func refuseAllH2C(t *testing.T, streams *atomic.Int64) string {
	t.Helper()
	up := newRawUpstream(t, func(_ *rawUpstream, c net.Conn, br *bufio.Reader) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil {
			return
		}
		fr := http2.NewFramer(c, br)
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && fr.WriteSettingsAck() != nil {
					return
				}
			case *http2.HeadersFrame:
				streams.Add(1)
				if fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream) != nil {
					return
				}
			}
		}
	})
	return up.Addr()
}

// HTTP/2 (h2c): the transport's own loop re-sends a refused stream at once,
// then after 1s, 2s, 4s, ... up to 7 times. The guard stops it at the third
// connection it takes (one more stream may open as the cancellation races
// it), about 1s in, instead of at the service timeout.
func TestResendBoundedH2C(t *testing.T) {
	var streams atomic.Int64
	addr := refuseAllH2C(t, &streams)
	s := newTransport(t, ambassador.ServiceConfig{Name: "users", Protocol: ambassador.ProtocolH2C,
		Timeout: 4 * time.Second, Discovery: discovery.Config{Static: []string{addr}}}, quietLogs)
	start := time.Now()
	_, err := send(t, s, http.MethodGet, "http://users/once", nil, "")
	elapsed := time.Since(start)
	require.Error(t, err)
	t.Logf("streams: %d in %v, error: %v", streams.Load(), elapsed, err)
	assert.ErrorIs(t, err, ambassador.ErrResendLimit)
	assert.NotErrorIs(t, err, context.Canceled)
	assert.LessOrEqual(t, streams.Load(), int64(3), "streams offered for one GET")
	assert.Less(t, elapsed, 3*time.Second)
}

// Over HTTP/2 the stopped request's streams were refused, never processed:
// retry sends even a POST again (one transport re-send per attempt).
func TestResendBoundedH2CPOSTRetried(t *testing.T) {
	var streams atomic.Int64
	addr := refuseAllH2C(t, &streams)
	metrics := newStackMetrics(t)
	s := newTransport(t, ambassador.ServiceConfig{Name: "users", Protocol: ambassador.ProtocolH2C,
		Timeout: 5 * time.Second, Discovery: discovery.Config{Static: []string{addr}},
		Retry: &retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}},
		quietLogs, ambassador.WithMeterProvider(metrics.mp))
	_, err := send(t, s, http.MethodPost, "http://users/orders", nil, "order-42")
	require.Error(t, err)
	assert.ErrorIs(t, err, ambassador.ErrResendLimit)
	out := metrics.retryOutcomes(t)
	assert.Equal(t, int64(1), out[retry.OutcomeRetried], "outcomes %v", out)
	assert.Equal(t, int64(1), out[retry.OutcomeExhausted], "outcomes %v", out)
	assert.LessOrEqual(t, streams.Load(), int64(2*3), "streams offered")
}

// The client metrics give a stopped send error.type reset (the guard's
// stop, not the caller going away), although under a Stack the guard's
// context is also the context of the layers above it.
func TestResendLimitErrorTypeReset(t *testing.T) {
	up := newDropUpstream(t, poolSize)
	metrics := newStackMetrics(t)
	s := newTransport(t, ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{up.Addr()}}},
		quietLogs, ambassador.WithMeterProvider(metrics.mp))
	up.fillPool(t, s, "http://users/fill")

	_, err := send(t, s, http.MethodGet, "http://users/once", nil, "")
	require.ErrorIs(t, err, ambassador.ErrResendLimit)
	var types []string
	for _, dp := range collectHistogram[float64](t, metrics.reader, "http.client.request.duration") {
		if et, ok := attrMap(dp.Attributes)["error.type"]; ok {
			types = append(types, et)
		}
	}
	assert.Equal(t, []string{"reset"}, types)
}
