package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/testkit"
)

// binPath is the ambassador binary TestMain builds once.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ambassador-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ambassador")
	build := exec.Command("go", "build", "-o", binPath, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the ambassador: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuf collects a process's output.
type syncBuf = testkit.SyncBuffer

// proc is one running ambassador process.
type proc struct {
	cmd   *exec.Cmd
	out   *syncBuf
	done  chan struct{}
	admin string // http://host:port of the admin listener
	path  string // config file
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, args...)
}

// startProcEnv is startProc with env added to the test's environment, from
// which GOGC and GOMAXPROCS are removed first when env is not nil.
func startProcEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, args...), out: &syncBuf{}, done: make(chan struct{})}
	if env != nil {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
				p.cmd.Env = append(p.cmd.Env, kv)
			}
		}
		p.cmd.Env = append(p.cmd.Env, env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("ambassador output:\n%s", p.out)
		}
	})
	return p
}

// exitCode waits for the process to end and returns its exit code.
func (p *proc) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("ambassador still running after %s", within)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// handedOut holds every address freeAddr has returned in this test binary:
// the kernel may give a just-closed port out again at once, and two
// listeners of one config on one port make the process refuse to start.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freeAddr returns a loopback address that was free a moment ago and that
// no earlier call in this test binary has returned.
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
	t.Fatal("no unused loopback port after 100 tries")
	return ""
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

// runAmbassador starts the binary on config (whose admin address must be
// admin) and waits until /readyz answers 200.
func runAmbassador(t *testing.T, admin, config string, extra ...string) *proc {
	t.Helper()
	return runAmbassadorEnv(t, nil, admin, config, extra...)
}

// runAmbassadorEnv is runAmbassador with the environment of startProcEnv.
func runAmbassadorEnv(t *testing.T, env []string, admin, config string, extra ...string) *proc {
	t.Helper()
	path := writeConfig(t, config)
	p := startProcEnv(t, env, append([]string{"-config", path}, extra...)...)
	p.admin, p.path = "http://"+admin, path
	c := newClient(t)
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			return true // fail below with the output
		default:
		}
		resp, err := c.Get(p.admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("ambassador exited at start (code %d)", p.cmd.ProcessState.ExitCode())
	default:
	}
	return p
}

// oneServiceConfig is a config with the admin listener at admin and one
// listener at lis that sends everything to service name, whose one endpoint
// is upstream (host:port). svc is more YAML for the service (unindented
// lines; "" for none), top more top-level YAML.
func oneServiceConfig(admin, lis, name, upstream, svc, top string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "admin: {address: %s}\nlisteners: [{address: %s, service: %s}]\nservices:\n  %s:\n    discovery: {static: [%s]}\n",
		admin, lis, name, name, upstream)
	for line := range strings.Lines(svc) {
		b.WriteString("    " + strings.TrimSuffix(line, "\n") + "\n")
	}
	if top != "" {
		b.WriteString(top + "\n")
	}
	return b.String()
}

// serveOne runs the ambassador with oneServiceConfig on free loopback
// addresses and returns the process and the service listener's address.
func serveOne(t *testing.T, name, upstream, svc, top string) (*proc, string) {
	t.Helper()
	admin, lis := freeAddr(t), freeAddr(t)
	return runAmbassador(t, admin, oneServiceConfig(admin, lis, name, upstream, svc, top)), lis
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// textUpstream is a loopback upstream that answers every request with body;
// it is closed when the test ends.
func textUpstream(t *testing.T, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// answers reports whether a GET of u succeeds with status 200 and body want:
// the condition of the require.Eventually loops that wait for a reload.
func answers(c *http.Client, u, want string) bool {
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK && string(b) == want
}

func hostOf(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	return pu.Host
}

// ---------------------------------------------------------------------------
// Policies

func TestRetriesHideFlakyUpstream(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 { // every other attempt fails
			http.Error(w, "flaky", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	_, lis := serveOne(t, "flaky", hostOf(up.URL), `retry: {max_attempts: 3, base_delay: 1ms, max_delay: 5ms, budget: {disabled: true}}`, "")
	c := newClient(t)
	for i := range 20 {
		resp, body := get(t, c, "http://"+lis+"/x")
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: %s", i, body)
		assert.Empty(t, resp.Header.Get("X-Outbound-Error"))
	}
	assert.Equal(t, int64(40), n.Load(), "each request took one failed and one good attempt")
}

func TestRateLimitedAnswer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	_, lis := serveOne(t, "slowly", hostOf(up.URL), `ratelimit: {rps: 0.2, burst: 1, scope: global}`, "")
	c := newClient(t)
	resp, _ := get(t, c, "http://"+lis+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(t, c, "http://"+lis+"/")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "rate_limited", resp.Header.Get("X-Outbound-Error"))
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After in whole seconds")
	assert.GreaterOrEqual(t, ra, 1)
	assert.LessOrEqual(t, ra, 5)
}

func TestCircuitOpenAnswer(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer up.Close()
	_, lis := serveOne(t, "broken", hostOf(up.URL), `breaker: {consecutive_failures: 3, open_timeout: 1m}`, "")
	c := newClient(t)
	for range 3 {
		resp, _ := get(t, c, "http://"+lis+"/")
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode, "the upstream's own answer passes through")
		require.Empty(t, resp.Header.Get("X-Outbound-Error"))
	}
	resp, _ := get(t, c, "http://"+lis+"/")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	// With one endpoint, its open breaker ejects it: discovery reports no
	// ready endpoint, or the breaker its own refusal, depending on the layer
	// that sees it first.
	assert.Contains(t, []string{"circuit_open", "no_endpoints"}, resp.Header.Get("X-Outbound-Error"))
	assert.Equal(t, int64(3), hits.Load(), "no request reaches an ejected endpoint")
}

// ---------------------------------------------------------------------------
// Routing and refusals

func TestNoRouteNeverConnects(t *testing.T) {
	canary, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer canary.Close()
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := canary.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = conn.Close()
		}
	}()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "users")
	}))
	defer up.Close()
	admin, lis := freeAddr(t), freeAddr(t)
	runAmbassador(t, admin, fmt.Sprintf(`
admin: {address: %s}
listeners:
  - address: %s
    routes:
      - {host: users.internal, service: users}
services:
  users:
    discovery: {static: [%s]}
`, admin, lis, hostOf(up.URL)))
	c := newClient(t)

	// Host header naming the canary.
	req, err := http.NewRequest(http.MethodGet, "http://"+lis+"/", nil)
	require.NoError(t, err)
	req.Host = canary.Addr().String()
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "no_route", resp.Header.Get("X-Outbound-Error"))

	// Absolute-URI request, as a forward-proxy client sends it.
	proxied := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: lis})}}
	defer proxied.CloseIdleConnections()
	resp, _ = get(t, proxied, "http://"+canary.Addr().String()+"/steal")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "no_route", resp.Header.Get("X-Outbound-Error"))

	// The configured host, matched case-insensitively with its port ignored.
	resp, body := get(t, proxied, "http://USERS.internal:8080/x")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "users", body)

	// CONNECT is refused.
	conn, err := net.Dial("tcp", lis)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", canary.Addr(), canary.Addr())
	require.NoError(t, err)
	cresp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	_ = cresp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, cresp.StatusCode)
	assert.Equal(t, "bad_request", cresp.Header.Get("X-Outbound-Error"))

	assert.Zero(t, accepted.Load(), "the canary must never see a connection")
}

func TestProxySemantics(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Outbound-Error", "forged_by_upstream")
		w.Header().Set("X-Saw-Foo", r.Header.Get("X-Foo"))
		w.Header().Set("X-Saw-Bar", r.Header.Get("X-Bar"))
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	}))
	defer up.Close()
	admin, lis, dead := freeAddr(t), freeAddr(t), freeAddr(t)
	p := runAmbassador(t, admin, fmt.Sprintf(`
admin: {address: %s}
listeners:
  - address: %s
    routes:
      - {path_prefix: /dead/, service: dead}
      - {service: users}
services:
  users:
    discovery: {static: [%s]}
    breaker: {}
  dead:
    discovery: {static: [%s]}
limits: {max_header_bytes: 1KiB}
`, admin, lis, hostOf(up.URL), dead))
	c := newClient(t)

	req, err := http.NewRequest(http.MethodGet, "http://"+lis+"/x", nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "X-Foo")
	req.Header.Set("X-Foo", "hop-by-hop")
	req.Header.Set("X-Bar", "end-to-end")
	resp, err := c.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, "body", string(body))
	assert.Empty(t, resp.Header.Get("X-Outbound-Error"), "an upstream's own X-Outbound-Error is removed")
	assert.Empty(t, resp.Header.Get("X-Saw-Foo"), "headers named in Connection are not forwarded")
	assert.Equal(t, "end-to-end", resp.Header.Get("X-Saw-Bar"))
	assert.Equal(t, "abc", resp.Trailer.Get("X-Checksum"), "trailers are forwarded")

	resp, _ = get(t, c, "http://"+lis+"/dead/x")
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Equal(t, "upstream_connect_failure", resp.Header.Get("X-Outbound-Error"))

	req, err = http.NewRequest(http.MethodGet, "http://"+lis+"/x", nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err = c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)

	// Admin endpoints.
	resp, body2 := get(t, c, p.admin+"/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode, body2)
	resp, body2 = get(t, c, p.admin+"/metrics")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body2, "go_goroutines")
	assert.Contains(t, body2, `http_client_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200"`,
		"one client measurement per attempt, with the semantic-convention attributes")
	resp, body2 = get(t, c, p.admin+"/status")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st struct {
		Services map[string]struct {
			Endpoints []struct {
				Address  string  `json:"address"`
				Ready    bool    `json:"ready"`
				Breaker  string  `json:"breaker"`
				InFlight *int    `json:"in_flight"`
				EWMA     float64 `json:"ewma_ms"`
			} `json:"endpoints"`
		} `json:"services"`
	}
	require.NoError(t, json.Unmarshal([]byte(body2), &st), body2)
	require.Len(t, st.Services["users"].Endpoints, 1)
	ep := st.Services["users"].Endpoints[0]
	assert.Equal(t, hostOf(up.URL), ep.Address)
	assert.True(t, ep.Ready)
	assert.Equal(t, "closed", ep.Breaker)
	assert.NotNil(t, ep.InFlight)
	assert.Len(t, st.Services["dead"].Endpoints, 1)
	assert.Contains(t, p.out.String(), "error=upstream_connect_failure", "the access log carries the reason")
}

func TestOverloadedBulkhead(t *testing.T) {
	release := make(chan struct{})
	var inside, maxInside atomic.Int64
	entered := make(chan struct{}, 20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inside.Add(1)
		for {
			m := maxInside.Load()
			if n <= m || maxInside.CompareAndSwap(m, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		inside.Add(-1)
		_, _ = io.WriteString(w, "done")
	}))
	defer up.Close()
	_, lis := serveOne(t, "slow", hostOf(up.URL), `max_concurrent_requests: 5`, "")
	c := newClient(t)
	type result struct {
		code   int
		reason string
	}
	results := make(chan result, 20)
	for range 20 {
		go func() {
			resp, err := c.Get("http://" + lis + "/")
			if err != nil {
				results <- result{code: -1, reason: err.Error()}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("X-Outbound-Error")}
		}()
	}
	// While five are held upstream, the other fifteen are refused at once.
	for range 15 {
		select {
		case r := <-results:
			assert.Equal(t, http.StatusServiceUnavailable, r.code)
			assert.Equal(t, "overloaded", r.reason)
		case <-time.After(10 * time.Second):
			t.Fatal("refusals did not come at once")
		}
	}
	for range 5 {
		<-entered
	}
	assert.Equal(t, int64(5), inside.Load())
	close(release)
	for range 5 {
		r := <-results
		assert.Equal(t, http.StatusOK, r.code)
	}
	assert.Equal(t, int64(5), maxInside.Load(), "never more than five upstream at a time")
}

func TestTrafficSplit(t *testing.T) {
	named := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, name)
		}))
	}
	v1, v2, v3 := named("v1"), named("v2"), named("v3")
	defer v1.Close()
	defer v2.Close()
	defer v3.Close()
	admin, lis := freeAddr(t), freeAddr(t)
	runAmbassador(t, admin, fmt.Sprintf(`
admin: {address: %s}
listeners:
  - address: %s
    routes:
      - path_prefix: /reviews/
        split: [{service: v1, weight: 90}, {service: v2, weight: 10}]
      - path_prefix: /zero/
        split: [{service: v3, weight: 0}, {service: v1, weight: 1}]
services:
  v1: {discovery: {static: [%s]}}
  v2: {discovery: {static: [%s]}}
  v3: {discovery: {static: [%s]}}
`, admin, lis, hostOf(v1.URL), hostOf(v2.URL), hostOf(v3.URL)))
	c := newClient(t)
	const total = 2000
	var counts [3]atomic.Int64
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				resp, err := c.Get("http://" + lis + "/reviews/1")
				if !assert.NoError(t, err) {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				switch string(b) {
				case "v1":
					counts[0].Add(1)
				case "v2":
					counts[1].Add(1)
				default:
					counts[2].Add(1)
				}
			}
		}()
	}
	for range total {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	share := float64(counts[1].Load()) / total * 100
	t.Logf("v1=%d v2=%d other=%d (v2 %.1f%%)", counts[0].Load(), counts[1].Load(), counts[2].Load(), share)
	assert.Zero(t, counts[2].Load())
	assert.InDelta(t, 10, share, 3, "90/10 split within ±3 points")
	for range 50 {
		_, body := get(t, c, "http://"+lis+"/zero/x")
		require.Equal(t, "v1", body, "weight 0 is never chosen")
	}
}

// ---------------------------------------------------------------------------
// Streaming

func TestLargeBodiesStreamIntact(t *testing.T) {
	const size = 10 << 20
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(payload)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
			return
		}
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	_, lis := serveOne(t, "files", hostOf(up.URL), "", "")
	c := newClient(t)

	// Upload with an unknown length: streamed, chunked.
	resp, err := c.Post("http://"+lis+"/up", "application/octet-stream", io.MultiReader(bytes.NewReader(payload)))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, fmt.Sprintf("%d %s", size, hex.EncodeToString(want[:])), string(body))

	resp, err = c.Get("http://" + lis + "/down")
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, int64(size), n)
	assert.Equal(t, want[:], h.Sum(nil))
}

func TestServerSentEventsArriveBeforeUpstreamFinishes(t *testing.T) {
	finish := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-finish:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: last\n\n")
	}))
	defer up.Close()
	_, lis := serveOne(t, "events", hostOf(up.URL), "", "")
	c := newClient(t)
	resp, err := c.Get("http://" + lis + "/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: first\n", line, "the first event arrives while the upstream still holds the stream")
	close(finish)
	rest, err := io.ReadAll(rd)
	require.NoError(t, err)
	assert.Equal(t, "\ndata: last\n\n", string(rest))
}

// ---------------------------------------------------------------------------
// Process life cycle

func TestSIGTERMDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "finished")
	}))
	defer up.Close()
	p, lis := serveOne(t, "slow", hostOf(up.URL), "", `limits: {drain_timeout: 20s}`)
	c := newClient(t)
	codes := make(chan int, 20)
	for range 20 {
		go func() {
			resp, err := c.Get("http://" + lis + "/")
			if err != nil {
				codes <- -1
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(b) != "finished" {
				codes <- -2
				return
			}
			codes <- resp.StatusCode
		}()
	}
	for range 20 {
		<-entered
	}
	p.signal(t, syscall.SIGTERM)
	// Draining: the admin listener says so while the requests are held.
	require.Eventually(t, func() bool {
		resp, err := c.Get(p.admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 10*time.Millisecond)
	close(release)
	for range 20 {
		assert.Equal(t, http.StatusOK, <-codes)
	}
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
}

func TestCheckReportsEveryBadKey(t *testing.T) {
	path := writeConfig(t, `
listeners:
  - address: 127.0.0.1:1
    routes:
      - {path_prefix: /pay/, service: pay}
services:
  users:
    discovery: {static: [127.0.0.1:2]}
    retry: {max_attempts: -1}
    bogus_key: 1
`)
	p := startProc(t, "-config", path, "-check")
	assert.Equal(t, 2, p.exitCode(t, 10*time.Second))
	out := p.out.String()
	for _, key := range []string{
		"listeners[0].routes[0].service",
		"services.users.retry.max_attempts",
		"services.users.bogus_key",
	} {
		assert.Contains(t, out, key)
	}

	good := writeConfig(t, `
listeners: [{address: 127.0.0.1:1, service: users}]
services:
  users: {discovery: {static: [127.0.0.1:2]}}
`)
	p = startProc(t, "-config", good, "-check")
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
	assert.Contains(t, p.out.String(), "config OK")

	p = startProc(t, "-config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 2, p.exitCode(t, 10*time.Second), "a missing config file is a config error")

	p = startProc(t, "-no-such-flag")
	assert.Equal(t, 2, p.exitCode(t, 10*time.Second))

	for _, flag := range []string{"-check", "-watch"} {
		p = startProc(t, flag)
		assert.Equal(t, 2, p.exitCode(t, 10*time.Second), flag)
		assert.Contains(t, p.out.String(), flag+" needs -config FILE")
	}

	// The file named without -config is not taken for the demo's absence.
	for _, args := range [][]string{{good}, {"-config", good, "extra"}, {"-check", good}} {
		p = startProc(t, args...)
		assert.Equal(t, 2, p.exitCode(t, 10*time.Second), "%q", args)
		assert.Contains(t, p.out.String(), "unexpected argument", "%q", args)
		assert.Contains(t, p.out.String(), "-config FILE", "%q", args)
	}
}

func TestBindFailureExitsOne(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	path := writeConfig(t, fmt.Sprintf(`
admin: {address: %s}
listeners: [{address: %s, service: users}]
services:
  users: {discovery: {static: [127.0.0.1:2]}}
`, freeAddr(t), busy.Addr()))
	p := startProc(t, "-config", path)
	assert.Equal(t, 1, p.exitCode(t, 10*time.Second))
	assert.Contains(t, p.out.String(), busy.Addr().String())
}

func TestSIGHUPReloadKeepsInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	one := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a/long" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "one")
	}))
	defer one.Close()
	two := textUpstream(t, "two")
	admin, lis := freeAddr(t), freeAddr(t)
	base := fmt.Sprintf(`
admin: {address: %s}
listeners:
  - address: %s
    routes:
      - {path_prefix: /a/, service: one}
%%s
services:
  one:
    discovery: {static: [%s]}
    timeout: %%s
%%s
`, admin, lis, hostOf(one.URL))
	p := runAmbassador(t, admin, fmt.Sprintf(base, "", "30s", ""))
	c := newClient(t)

	long := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://" + lis + "/a/long")
		if err != nil {
			long <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		long <- strconv.Itoa(resp.StatusCode) + " " + string(b)
	}()
	<-entered

	resp, _ := get(t, c, "http://"+lis+"/b/x")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// A broken config is refused and the old one keeps serving.
	require.NoError(t, os.WriteFile(p.path, []byte("listeners: [oops"), 0o600))
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool { return strings.Contains(p.out.String(), "reload failed") }, 5*time.Second, 10*time.Millisecond)
	resp, body := get(t, c, "http://"+lis+"/a/x")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	// Add a route and service two, change service one.
	next := fmt.Sprintf(base, "      - {path_prefix: /b/, service: two}", "20s",
		fmt.Sprintf("  two:\n    discovery: {static: [%s]}", hostOf(two.URL)))
	require.NoError(t, os.WriteFile(p.path, []byte(next), 0o600))
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool { return answers(c, "http://"+lis+"/b/x", "two") }, 5*time.Second, 10*time.Millisecond)
	resp, body = get(t, c, "http://"+lis+"/a/x")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "one", body, "the changed service serves new requests")

	select {
	case r := <-long:
		t.Fatalf("the long request ended early: %s", r)
	default:
	}
	close(release)
	assert.Equal(t, "200 one", <-long, "the in-flight request finishes on the old stack")
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	one, two := textUpstream(t, "one"), textUpstream(t, "two")
	admin, lis := freeAddr(t), freeAddr(t)
	cfg := `
admin: {address: %s}
listeners: [{address: %s, service: svc}]
services:
  svc: {discovery: {static: [%s]}}
`
	p := runAmbassador(t, admin, fmt.Sprintf(cfg, admin, lis, hostOf(one.URL)), "-watch")
	c := newClient(t)
	_, body := get(t, c, "http://"+lis+"/")
	require.Equal(t, "one", body)
	// Replace the file the way editors do: write a new one, rename it over.
	tmp := p.path + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(fmt.Sprintf(cfg, admin, lis, hostOf(two.URL))), 0o600))
	require.NoError(t, os.Rename(tmp, p.path))
	require.Eventually(t, func() bool { return answers(c, "http://"+lis+"/", "two") }, 5*time.Second, 10*time.Millisecond)
}

func TestExpectContinue(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d", len(b))
	}))
	defer up.Close()
	_, lis := serveOne(t, "up", hostOf(up.URL), "", "")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPut, "http://"+lis+"/", strings.NewReader(strings.Repeat("x", 100000)))
	require.NoError(t, err)
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "100000", string(b))
	assert.Less(t, time.Since(start), 4*time.Second, "the body was sent on 100 Continue, not after the timeout")
}

// Kubernetes mounts a ConfigMap as config.yaml -> ..data/config.yaml and
// updates it by swapping the ..data symlink; -watch must see that too.
func TestWatchFollowsSymlinkSwap(t *testing.T) {
	one, two := textUpstream(t, "one"), textUpstream(t, "two")
	admin, lis := freeAddr(t), freeAddr(t)
	cfg := `
admin: {address: %s}
listeners: [{address: %s, service: svc}]
services:
  svc: {discovery: {static: [%s]}}
`
	dir := t.TempDir()
	version := func(name, upstream string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "config.yaml"), []byte(fmt.Sprintf(cfg, admin, lis, upstream)), 0o600))
	}
	version("v1", hostOf(one.URL))
	require.NoError(t, os.Symlink("v1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "config.yaml"), path))

	p := startProc(t, "-config", path, "-watch")
	p.admin = "http://" + admin
	c := newClient(t)
	require.Eventually(t, func() bool { return answers(c, "http://"+lis+"/", "one") }, 15*time.Second, 20*time.Millisecond)

	version("v2", hostOf(two.URL))
	require.NoError(t, os.Symlink("v2", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.Eventually(t, func() bool { return answers(c, "http://"+lis+"/", "two") }, 5*time.Second, 10*time.Millisecond)
}

// The process runs with GOGC 400 and GOMAXPROCS 1 unless the environment
// sets them (benchmarks/proxy measured both); /metrics shows what is in
// force.
func TestRuntimeDefaultsAndOverrides(t *testing.T) {
	cases := []struct {
		name          string
		env           []string
		gogc, maxproc string
	}{
		{"defaults", []string{}, "400", "1"},
		{"environment wins", []string{"GOGC=100", "GOMAXPROCS=2"}, "100", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admin := freeAddr(t)
			p := runAmbassadorEnv(t, tc.env, admin, oneServiceConfig(admin, freeAddr(t), "users", freeAddr(t), "", ""))
			resp, body := get(t, newClient(t), p.admin+"/metrics")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Contains(t, body, "\ngo_gc_gogc_percent "+tc.gogc+"\n")
			assert.Contains(t, body, "\ngo_sched_gomaxprocs_threads "+tc.maxproc+"\n")
		})
	}
}
