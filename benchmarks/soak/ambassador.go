package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

// drainTimeout is the ambassador's limits.drain_timeout in the soak
// config: after SIGTERM it must exit 0 within this (plus exitGrace).
const (
	drainTimeout = 5 * time.Second
	exitGrace    = 5 * time.Second
)

// buildAmbassador builds ./examples/ambassador of the outbound module this
// benchmarks module replaces (go list finds its directory) into dir.
func buildAmbassador(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/outbound-go/outbound").Output()
	if err != nil {
		return "", fmt.Errorf("finding the outbound module (run inside the benchmarks module): %w", err)
	}
	repo := strings.TrimSpace(string(out))
	bin := filepath.Join(dir, "ambassador")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/ambassador")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/ambassador in %s: %w\n%s", repo, err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback host:port nobody listened on a moment ago.
func freeAddr() (string, error) {
	ln, err := loopback.Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// addrs are the ambassador's listeners in the soak config.
type addrs struct {
	admin, routes, single string
}

// soakConfig is the ambassador config of the soak: a routed listener
// whose path prefixes pick a service per behaviour, a one-service
// listener, and services with retry (per-try timeouts, hedging), breakers
// that trip and recover, a rate limit and a split.
func soakConfig(a addrs, u *upstreams) string {
	return fmt.Sprintf(`admin: {address: %[1]s}
listeners:
  - address: %[2]s
    routes:
      - {path_prefix: /fast/, service: fast}
      - {path_prefix: /h2/, service: fasth2}
      - {path_prefix: /slow/, service: slow}
      - {path_prefix: /flaky/, service: flaky}
      - {path_prefix: /broken/, service: broken}
      - {path_prefix: /limited/, service: limited}
      - path_prefix: /split/
        split: [{service: fast, weight: 80}, {service: slow, weight: 20}]
  - address: %[3]s
    service: fast
services:
  fast:
    discovery: {static: [%[4]s]}
    retry: {}
    breaker: {}
  fasth2:
    discovery: {static: [%[4]s]}
    protocol: h2c
    timeout: 5s
    retry: {}
  slow:
    discovery: {static: [%[5]s]}
    timeout: 2s
    retry: {max_attempts: 2, per_try_timeout: 180ms, hedge: {delay: 120ms, max_extra: 1}}
  flaky:
    discovery: {static: [%[4]s, %[6]s, %[7]s], balancer: round_robin}
    retry: {max_attempts: 3, retry_on: [connect-failure, refused-stream, reset, gateway-error, 5xx]}
    breaker: {consecutive_failures: 3, open_timeout: 1s}
  broken:
    discovery: {static: [%[6]s, %[7]s], balancer: least_request}
    timeout: 3s
    retry: {max_attempts: 2, retry_on: [reset, 5xx]}
    breaker: {consecutive_failures: 5, open_timeout: 2s}
  limited:
    discovery: {static: [%[4]s]}
    ratelimit: {rps: 50, burst: 20}
limits:
  drain_timeout: %[8]s
`, a.admin, a.routes, a.single, u.fast, u.slow, u.failing, u.reset, drainTimeout)
}

// ambassador is the running ambassador process.
type ambassador struct {
	cmd   *exec.Cmd
	addrs addrs
	log   *tailBuffer
	done  chan struct{} // closed when the process has exited
	err   error         // Wait's result, set before done is closed
}

// startAmbassador writes the soak config into dir and starts bin with it;
// the process's stdout and stderr (the access log) are kept in a bounded
// tail for the report.
func startAmbassador(bin, dir string, u *upstreams) (*ambassador, error) {
	var a addrs
	for _, p := range []*string{&a.admin, &a.routes, &a.single} {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		*p = addr
	}
	cfg := filepath.Join(dir, "ambassador.yaml")
	if err := os.WriteFile(cfg, []byte(soakConfig(a, u)), 0o600); err != nil {
		return nil, err
	}
	return startProcess(exec.Command(bin, "-config", cfg), a)
}

// startProcess starts cmd with its output kept in a bounded tail and a
// goroutine that waits for its exit.
func startProcess(cmd *exec.Cmd, a addrs) (*ambassador, error) {
	amb := &ambassador{cmd: cmd, addrs: a, log: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout = amb.log
	cmd.Stderr = amb.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		amb.err = cmd.Wait()
		close(amb.done)
	}()
	return amb, nil
}

// pid is the ambassador's process id.
func (a *ambassador) pid() int { return a.cmd.Process.Pid }

// waitReady polls the admin /readyz every 100 ms until it answers 200,
// the process exits, or timeout passes.
func (a *ambassador) waitReady(ctx context.Context, c *http.Client, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = get(ctx, c, "http://"+a.addrs.admin+"/readyz")
		if last == nil {
			return nil
		}
		select {
		case <-a.done:
			return fmt.Errorf("ambassador exited before it was ready (%v):\n%s", a.err, a.log)
		case <-deadline.C:
			return fmt.Errorf("ambassador not ready within %s: %w\n%s", timeout, last, a.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// get fetches url and fails unless the answer is 200.
func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// stop sends SIGTERM and waits for the exit: it must come with status 0
// within bound (the soak passes drainTimeout+exitGrace); past that the
// process is killed and stop says so. It returns how long the exit took.
func (a *ambassador) stop(bound time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("SIGTERM: %w", err)
	}
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-a.done:
	case <-t.C:
		_ = a.cmd.Process.Kill()
		<-a.done
		return time.Since(start), fmt.Errorf("ambassador still running %s after SIGTERM: killed", bound)
	}
	took := time.Since(start)
	if a.err != nil {
		return took, fmt.Errorf("ambassador exited after SIGTERM with %v, want status 0", a.err)
	}
	return took, nil
}

// kill ends the process at once (on an early failure of the soak).
func (a *ambassador) kill() {
	select {
	case <-a.done:
	default:
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// tailBuffer is an io.Writer that keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept tail, from its first whole line.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) == t.max {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// dialLoopback is a net.Dialer's DialContext that refuses any address but
// a loopback one.
func dialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := loopback.Check(addr); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
