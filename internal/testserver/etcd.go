package testserver

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Etcd is a single-member etcd a test started.
type Etcd struct {
	*Process
	// Endpoint is the client URL, http://127.0.0.1:PORT.
	Endpoint string
	// Addr is the client host:port.
	Addr string
}

// StartEtcd starts a one-member etcd (Debian package etcd-server; the
// environment variable OUTBOUND_ETCD names another binary, such as a current
// release) on free loopback client and peer ports with a temporary data
// directory, and stops it when the test ends. It returns once /health
// answers.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := Need(t, "OUTBOUND_ETCD", "etcd", "etcd-server")
	client, peer := loopback(FreePort(t)), loopback(FreePort(t))
	dir := t.TempDir()
	e := &Etcd{Endpoint: "http://" + client, Addr: client}
	args := []string{
		"--name", "test", "--data-dir", dir + "/data",
		"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "test=http://" + peer, "--initial-cluster-state", "new",
		"--log-level", "warn",
	}
	e.Process = startProcess(t, "etcd", bin, dir, args, e.health)
	return e
}

// Restart starts etcd again after Stop, on the same ports and data.
func (e *Etcd) Restart() { e.Start(e.health) }

func (e *Etcd) health() error {
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(e.Endpoint + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd /health: %s", resp.Status)
	}
	return nil
}
