package testserver

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server a test started.
type Redis struct {
	*Process
	// Addr is the server's host:port on loopback.
	Addr string
}

// StartRedis starts a redis-server (Debian package redis-server) on a free
// loopback port with a temporary working directory, persistence off, and
// stops it when the test ends. It returns once the server answers PING.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := Need(t, "OUTBOUND_REDIS_SERVER", "redis-server", "redis-server")
	port := FreePort(t)
	dir := t.TempDir()
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
	}
	r := &Redis{Addr: loopback(port)}
	r.Process = startProcess(t, "redis-server", bin, dir, args, r.Ping)
	return r
}

// Restart starts the server again after Stop, on the same port.
func (r *Redis) Restart() { r.Start(r.Ping) }

// Ping sends one PING and reports an error unless the answer is PONG.
func (r *Redis) Ping() error {
	_, err := r.Do("PING")
	return err
}

// Do sends one command on a fresh connection and returns the first line of
// the answer without its type byte, or an error for an error answer. It is
// for a test's own checks (DBSIZE, GET of a small value), not a client.
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("redis: empty answer")
	}
	if line[0] == '-' {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	if line == "+PONG" || args[0] != "PING" {
		return line[1:], nil
	}
	return "", fmt.Errorf("redis: PING answered %q", line)
}
