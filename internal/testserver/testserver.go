// Package testserver starts real servers (redis-server, etcd, PostgreSQL)
// for tests, each on free loopback ports with a temporary data directory,
// and stops them when the test ends. Only tests import it; it imports
// nothing of outbound's, so every package's tests, internal or external, can
// use it.
//
// A server whose binary is not installed skips the test with a message naming
// the Debian package, except when CI=true (.ci/run), where the test fails:
// CI installs every package the tests need.
package testserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long a server may take to answer after it starts.
const StartTimeout = 20 * time.Second

// Need returns the path of binary, looked up in PATH (or taken from the
// environment variable env when that is set, so a test can run against
// another build of the server). When the binary is missing the test is
// skipped naming debianPackage, or fails under CI=true.
func Need(t testing.TB, env, binary, debianPackage string) string {
	t.Helper()
	if env != "" {
		if p := os.Getenv(env); p != "" {
			return p
		}
	}
	p, err := exec.LookPath(binary)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not installed: apt-get install %s", binary, debianPackage)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run must install it)")
	}
	t.Skip(msg)
	return ""
}

// handedOut remembers every port FreePort returned in this test binary: the
// kernel may hand a just-closed port out again at once.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback TCP port that was free a moment ago and that
// no earlier call in this test binary returned.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testserver: listen: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("testserver: no unused loopback port after 100 tries")
	return 0
}

// Process is one server process a test started. Stop and Start may be called
// again (a restart keeps the same ports and data directory); the test's
// cleanup stops it.
type Process struct {
	t    testing.TB
	name string
	bin  string
	args []string
	dir  string
	// cred, when set, runs the process as that user (PostgreSQL refuses
	// to run as root).
	cred *syscall.Credential
	// stop, when set, is sent first by Stop (a server that shuts its own
	// children down); Kill follows if it has not exited in stopTimeout.
	stop os.Signal

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *logBuffer
}

// logBuffer keeps the process's output for the failure message.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) < 1<<20 {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// stopTimeout bounds how long Stop waits after the stop signal before it
// kills the process.
const stopTimeout = 10 * time.Second

// startProcess runs bin with args in dir and registers its stop with the
// test; ready is polled until it returns nil or StartTimeout passes. Each opt
// sets an optional field (cred, stop) before the first start.
func startProcess(t testing.TB, name, bin, dir string, args []string, ready func() error, opts ...func(*Process)) *Process {
	t.Helper()
	p := &Process{t: t, name: name, bin: bin, args: args, dir: dir, out: &logBuffer{}}
	for _, o := range opts {
		o(p)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	p.Start(ready)
	return p
}

// Start starts the process again after Stop, on the same ports and data
// directory, and waits until ready answers.
func (p *Process) Start(ready func() error) {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("testserver: start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	deadline := time.Now().Add(StartTimeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-done:
			p.t.Fatalf("testserver: %s exited at start: %s", p.name, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("testserver: %s not ready after %s: %v", p.name, StartTimeout, err)
		}
	}
}

// Stop kills the process and waits for it to exit (a server with a stop
// signal gets that first and stopTimeout to exit by itself). Stopping a
// stopped process does nothing.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	if p.stop != nil && p.cmd.Process.Signal(p.stop) == nil {
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Running reports whether the process is started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Output is what the process has printed so far.
func (p *Process) Output() string { return p.out.String() }

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
