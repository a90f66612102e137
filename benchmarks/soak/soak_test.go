package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	ambconfig "github.com/outbound-go/outbound/ambassador/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseGauge(t *testing.T) {
	expo := "# HELP go_goroutines Number of goroutines that currently exist.\n" +
		"# TYPE go_goroutines gauge\ngo_goroutines_total_bogus 7\ngo_goroutines 42\ngo_threads 5\n"
	n, err := parseGauge(strings.NewReader(expo), "go_goroutines")
	require.NoError(t, err)
	assert.Equal(t, int64(42), n)

	_, err = parseGauge(strings.NewReader("go_threads 5\n"), "go_goroutines")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go_goroutines", "the error names the missing gauge")

	_, err = parseGauge(strings.NewReader("go_goroutines many\n"), "go_goroutines")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "many")
}

func TestParseRSS(t *testing.T) {
	n, err := parseRSS(strings.NewReader("Name:\tambassador\nVmPeak:\t  9000 kB\nVmRSS:\t   38400 kB\nThreads:\t5\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(38400), n)

	_, err = parseRSS(strings.NewReader("Name:\tx\n"))
	assert.ErrorContains(t, err, "VmRSS")
	_, err = parseRSS(strings.NewReader("VmRSS:\t12 MB\n"))
	assert.ErrorContains(t, err, "12 MB")
}

func TestVerdict(t *testing.T) {
	s := func(g, fds, rssMiB int64) sample {
		return sample{goroutines: g, fds: fds, rssKiB: rssMiB << 10, elapsed: time.Minute}
	}
	for _, tc := range []struct {
		name       string
		base, last sample
		pass       bool
	}{
		{"flat", s(100, 60, 40), s(100, 60, 40), true},
		{"shrank", s(100, 60, 40), s(80, 50, 30), true},
		{"within the slack", s(20, 10, 20), s(60, 30, 24), true},
		{"goroutines past the slack", s(20, 10, 20), s(61, 10, 20), false},
		{"fds past the slack", s(20, 10, 20), s(20, 31, 20), false},
		{"within 10% of a large number", s(1000, 500, 200), s(1100, 550, 220), true},
		{"goroutines past 10%", s(1000, 500, 200), s(1101, 500, 200), false},
		{"fds past 10%", s(1000, 500, 200), s(1000, 551, 200), false},
		{"rss past the slack", s(100, 60, 20), s(100, 60, 25), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			assert.Equal(t, tc.pass, verdict(&out, 24, tc.base, tc.last), out.String())
			assert.Equal(t, 3, strings.Count(out.String(), "\n"), "one line per metric")
		})
	}
}

func TestScheduleAndBaseline(t *testing.T) {
	at := schedule(2*time.Minute, 10*time.Second, 0.2)
	assert.Contains(t, at, 24*time.Second, "the baseline time is sampled")
	assert.Equal(t, 2*time.Minute, at[len(at)-1], "the end is the last sample")
	assert.Len(t, at, 13, "10 s .. 120 s and 24 s")

	at = schedule(10*time.Minute, 10*time.Second, 0.2)
	assert.Len(t, at, 60, "2 min is also an interval: no duplicate")

	samples := []sample{{elapsed: 0}, {elapsed: 10 * time.Second}, {elapsed: 24*time.Second + time.Millisecond}, {elapsed: 30 * time.Second}}
	b, ok := baseline(samples, 2*time.Minute, 0.2)
	require.True(t, ok)
	assert.Equal(t, samples[2], b)
	_, ok = baseline(samples[:2], 2*time.Minute, 0.2)
	assert.False(t, ok)
}

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("Get %q: %w", "http://x/", err) }
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	for _, tc := range []struct {
		err  error
		kind int
	}{
		{wrap(ctx.Err()), errTimeout},
		{wrap(&net.OpError{Op: "read", Err: syscall.ECONNRESET}), errReset},
		{wrap(io.EOF), errEOF},
		{wrap(io.ErrUnexpectedEOF), errEOF},
		{wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), errRefused},
		{wrap(http2.StreamError{StreamID: 3, Code: http2.ErrCodeInternal}), errH2},
		{wrap(errors.New("something else")), errOther},
	} {
		assert.Equal(t, errKindNames[tc.kind], errKindNames[classify(tc.err)], tc.err.Error())
	}
}

func TestCountsFailures(t *testing.T) {
	var c counts
	c.record(200, nil)
	c.record(200, nil)
	c.record(503, nil)
	c.record(429, nil)
	c.record(0, io.ErrUnexpectedEOF)
	s := c.snapshot()
	assert.Equal(t, int64(5), s.total)
	assert.Equal(t, int64(2), s.ok())
	assert.Equal(t, "429:1 503:1 eof:1", s.failures())
	assert.Equal(t, "-", (&counts{}).snapshot().failures())
}

func TestOptionsValidate(t *testing.T) {
	good := options{duration: time.Minute, interval: 10 * time.Second, timeout: time.Second, workers: 4, rps: 10}
	require.NoError(t, good.validate())
	for flag, mutate := range map[string]func(*options){
		"-duration": func(o *options) { o.duration = 0 },
		"-interval": func(o *options) { o.interval = 2 * time.Minute },
		"-timeout":  func(o *options) { o.timeout = -time.Second },
		"-workers":  func(o *options) { o.workers = 0 },
		"-rps":      func(o *options) { o.rps = 0 },
	} {
		o := good
		mutate(&o)
		assert.ErrorContains(t, o.validate(), flag)
	}
}

// TestSoakConfigIsValid checks the generated config against the
// ambassador's own parser and validation.
func TestSoakConfigIsValid(t *testing.T) {
	u := &upstreams{fast: "127.0.0.1:1", slow: "127.0.0.1:2", failing: "127.0.0.1:3", reset: "127.0.0.1:4"}
	a := addrs{admin: "127.0.0.1:5", routes: "127.0.0.1:6", single: "127.0.0.1:7"}
	cfg, err := ambconfig.ParseConfig([]byte(soakConfig(a, u)), t.TempDir())
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	assert.Len(t, cfg.Services, 6)
	assert.Equal(t, drainTimeout, cfg.Limits.DrainTimeout)
	for _, p := range paths {
		found := false
		for _, r := range cfg.Listeners[0].Routes {
			found = found || r.PathPrefix == p.prefix
		}
		assert.True(t, found, "traffic path %s has a route", p.prefix)
	}
}

// TestUpstreams checks that each upstream answers as the soak says.
func TestUpstreams(t *testing.T) {
	u, err := startUpstreams()
	require.NoError(t, err)
	defer u.close()
	c := &http.Client{Transport: &http.Transport{DialContext: dialLoopback, DisableKeepAlives: true}}
	defer c.CloseIdleConnections()
	do := func(addr, query string) (*http.Response, string) {
		resp, err := c.Get("http://" + addr + "/x" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	resp, body := do(u.fast, "?size=100")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Len(t, body, 100)

	start := time.Now()
	resp, _ = do(u.slow, "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	r1, _ := do(u.failing, "")
	r2, _ := do(u.failing, "")
	assert.ElementsMatch(t, []int{500, 503}, []int{r1.StatusCode, r2.StatusCode})

	for range 2 { // one closes before answering, the other mid-response
		conn, err := net.Dial("tcp", u.reset)
		require.NoError(t, err)
		_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		assert.Error(t, err, "no complete answer")
		conn.Close()
	}
	assert.NoError(t, u.err())
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 16}
	fmt.Fprint(tb, "line one\nline two\nline three\n")
	assert.Equal(t, "line three\n", tb.String())
}

// TestClassifyH2StreamReset checks the h2c client's real error for a
// stream the server aborted: net/http's own stream error type is
// unexported and reaches http2.StreamError through errors.As.
func TestClassifyH2StreamReset(t *testing.T) {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "abc")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	srv.Config.Protocols = p
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	c := newClients(1)
	defer c.closeIdle()
	resp, err := c.h2c.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 2, resp.ProtoMajor)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Error(t, err)
	assert.Equal(t, errKindNames[errH2], errKindNames[classify(err)], err.Error())
}

// TestStop checks the exit check on stand-in processes: status 0 after
// SIGTERM passes, another status fails, and a process that ignores SIGTERM
// is killed at the bound and fails.
func TestStop(t *testing.T) {
	start := func(t *testing.T, onTerm string) *ambassador {
		// The loop's sleeps are short so that no child outlives a kill by much.
		script := `trap '` + onTerm + `' TERM; echo ready; while :; do sleep 0.05; done`
		p, err := startProcess(exec.Command("sh", "-c", script), addrs{})
		require.NoError(t, err)
		t.Cleanup(p.kill)
		require.Eventually(t, func() bool { return strings.Contains(p.log.String(), "ready") }, 5*time.Second, 10*time.Millisecond)
		return p
	}
	t.Run("exit 0", func(t *testing.T) {
		_, err := start(t, "exit 0").stop(5 * time.Second)
		assert.NoError(t, err)
	})
	t.Run("exit 3", func(t *testing.T) {
		_, err := start(t, "exit 3").stop(5 * time.Second)
		assert.ErrorContains(t, err, "exit status 3")
	})
	t.Run("ignores SIGTERM", func(t *testing.T) {
		took, err := start(t, "").stop(300 * time.Millisecond)
		assert.ErrorContains(t, err, "still running")
		assert.GreaterOrEqual(t, took, 300*time.Millisecond)
	})
}
