package discovery_test

import (
	"context"
	"testing"

	"github.com/outbound-go/outbound/discovery"
)

// FuzzStaticAddress feeds config addresses to Validate and Static: neither
// panics, and they agree on what is a valid host:port.
func FuzzStaticAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8081", "[::1]:80", "users.internal:65535", "127.0.0.1", ":80", "h:0", "h:65536", "h:http", "", "[::1", "a b:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		verr := discovery.Config{Static: []string{addr}}.Validate()
		var serr error
		calls := 0
		discovery.Static(addr).Watch(context.Background(), func(eps []discovery.Endpoint, err error) {
			calls++
			serr = err
			if err == nil && (len(eps) != 1 || eps[0].Address != addr) {
				t.Fatalf("Static(%q) reported %v", addr, eps)
			}
		})
		if calls != 1 {
			t.Fatalf("Static(%q).Watch called update %d times", addr, calls)
		}
		if (verr == nil) != (serr == nil) {
			t.Fatalf("Validate and Static disagree on %q: %v / %v", addr, verr, serr)
		}
	})
}
