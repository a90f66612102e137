package testserver

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRedisStartsStopsRestarts(t *testing.T) {
	r := StartRedis(t)
	if _, err := r.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if r.Ping() == nil {
		t.Fatal("PING answered after Stop")
	}
	r.Restart()
	if err := r.Ping(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestEtcdStartsStopsRestarts(t *testing.T) {
	e := StartEtcd(t)
	e.Stop()
	if e.health() == nil {
		t.Fatal("etcd healthy after Stop")
	}
	e.Restart()
	if err := e.health(); err != nil {
		t.Fatalf("etcd after Restart: %v", err)
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
