package discovery_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// refresh is the re-resolve period of the DNS tests: short, so a change is
// seen within tens of milliseconds.
const refresh = 20 * time.Millisecond

func TestDNSPicksUpARecordChange(t *testing.T) {
	d := startDNS(t)
	d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.2", "users.test. 5 IN A 10.0.0.1", "users.test. 5 IN A 10.0.0.1")
	d.Set(t, "users.test", dns.TypeAAAA, "users.test. 5 IN AAAA fd00::1")
	src, err := discovery.DNS("users.test:8080", d.Addr, time.Hour)
	require.NoError(t, err)
	clk := newStepClock()
	w := watch(t, src, clk)
	clk.sleeping(t)
	clk.step(t) // the first lookup

	eps := w.nextSet(t)
	assert.Equal(t, []string{"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:8080"}, addrs(eps), "sorted and deduped")
	for _, ep := range eps {
		assert.Equal(t, 1, ep.Weight)
	}

	// Unchanged records: more lookups, no new update.
	before := d.Queries("udp", "users.test", dns.TypeA)
	for range 3 {
		clk.step(t)
	}
	assert.Equal(t, before+3, d.Queries("udp", "users.test", dns.TypeA), "one lookup per refresh")
	w.noSet(t)

	d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.3")
	clk.step(t)
	assert.Equal(t, []string{"10.0.0.3:8080", "[fd00::1]:8080"}, addrs(w.nextSet(t)))
}

func TestDNSOutageKeepsLastSet(t *testing.T) {
	tests := []struct {
		name    string
		outage  func(d *testDNS)
		errText string
	}{
		{"SERVFAIL", func(d *testDNS) { d.SetRcode(dns.RcodeServerFailure) }, "SERVFAIL"},
		{"REFUSED", func(d *testDNS) { d.SetRcode(dns.RcodeRefused) }, "REFUSED"},
		{"server stopped", func(d *testDNS) { d.Stop() }, "users.test"},
		{"records removed", func(d *testDNS) {
			d.mu.Lock()
			clear(d.answers)
			d.mu.Unlock()
		}, "no addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDNS(t)
			d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.1")
			src, err := discovery.DNS("users.test:80", d.Addr, refresh)
			require.NoError(t, err)
			w := watch(t, src)
			require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

			tt.outage(d)
			// Several failed rounds: each is reported, none empties the set.
			for range 3 {
				err := w.nextErr(t)
				assert.ErrorContains(t, err, tt.errText)
			}
			w.noSet(t)
		})
	}
}

func TestDNSRecoversAfterOutage(t *testing.T) {
	d := startDNS(t)
	d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.1")
	src, err := discovery.DNS("users.test:80", d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	d.SetRcode(dns.RcodeServerFailure)
	w.nextErr(t)
	d.Set(t, "users.test", dns.TypeA, "users.test. 5 IN A 10.0.0.9")
	d.SetRcode(dns.RcodeSuccess)
	assert.Equal(t, []string{"10.0.0.9:80"}, addrs(w.nextSet(t)))
}

func TestDNSFirstLookupFailsThenSucceeds(t *testing.T) {
	d := startDNS(t)
	src, err := discovery.DNS("late.test:80", d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)
	assert.ErrorContains(t, w.nextErr(t), "late.test")

	d.Set(t, "late.test", dns.TypeA, "late.test. 5 IN A 10.0.0.1")
	assert.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))
}

func TestDNSFallsBackToTCPOnTruncation(t *testing.T) {
	d := startDNS(t)
	d.Set(t, "big.test", dns.TypeA, "big.test. 5 IN A 10.0.0.1", "big.test. 5 IN A 10.0.0.2")
	d.Truncate("big.test")
	src, err := discovery.DNS("big.test:80", d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)
	assert.Equal(t, []string{"10.0.0.1:80", "10.0.0.2:80"}, addrs(w.nextSet(t)))
	assert.Positive(t, d.Queries("udp", "big.test", dns.TypeA))
	assert.Positive(t, d.Queries("tcp", "big.test", dns.TypeA))
}

func TestDNSFollowsCNAME(t *testing.T) {
	d := startDNS(t)
	d.Set(t, "www.test", dns.TypeA,
		"www.test. 5 IN CNAME lb.test.",
		"lb.test. 5 IN A 10.0.0.1",
		"other.test. 5 IN A 10.9.9.9") // not on the chain: ignored
	d.Set(t, "www.test", dns.TypeAAAA, "www.test. 5 IN CNAME lb.test.")
	src, err := discovery.DNS("www.test:80", d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)
	assert.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))
}

func TestDNSIPLiteralNeedsNoLookup(t *testing.T) {
	for _, hp := range []string{"127.0.0.1:8080", "[::1]:8080"} {
		t.Run(hp, func(t *testing.T) {
			// The resolver would refuse every query: it must not be asked.
			d := startDNS(t)
			d.SetRcode(dns.RcodeRefused)
			src, err := discovery.DNS(hp, d.Addr, refresh)
			require.NoError(t, err)
			w := watch(t, src)
			assert.Equal(t, []discovery.Endpoint{{Address: hp, Weight: 1}}, w.nextSet(t))
		})
	}
}

func TestDNSSystemResolver(t *testing.T) {
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil {
		t.Skipf("system resolver cannot resolve localhost: %v", err)
	}
	src, err := discovery.DNS("localhost:8080", "", 0)
	require.NoError(t, err)
	w := watch(t, src)
	assert.Contains(t, addrs(w.nextSet(t)), "127.0.0.1:8080")
}

func TestDNSWatchReturnsWhileQueryInFlight(t *testing.T) {
	// A "server" that reads queries and never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	got := make(chan struct{}, 100)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	src, err := discovery.DNS("users.test:80", pc.LocalAddr().String(), refresh)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Watch(ctx, func(eps []discovery.Endpoint, err error) {
			t.Errorf("unexpected update %v, %v", eps, err)
		})
	}()
	<-got // the query is in flight; its timeout is seconds away
	start := time.Now()
	cancel()
	select {
	case <-done:
		assert.Less(t, time.Since(start), time.Second)
	case <-time.After(waitFor):
		t.Fatal("Watch did not return after its context ended")
	}
}

func TestDNSRejectsBadArguments(t *testing.T) {
	tests := []struct {
		hostport, resolver string
		refresh            time.Duration
		want               string
	}{
		{"users", "", 0, `"users" is not host:port`},
		{"users:", "", 0, `port must be a number in 1-65535, got ""`},
		{"users:0", "", 0, `got "0"`},
		{"users:http", "", 0, `got "http"`},
		{"users:70000", "", 0, `got "70000"`},
		{":80", "", 0, "empty host"},
		{"us ers:80", "", 0, `host "us ers" is neither`},
		{"users:80", "10.0.0.2", 0, `resolver: "10.0.0.2" is not host:port`},
		{"users:80", "", -time.Second, "refresh: must be ≥ 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s,%s,%s", tt.hostport, tt.resolver, tt.refresh), func(t *testing.T) {
			src, err := discovery.DNS(tt.hostport, tt.resolver, tt.refresh)
			assert.Nil(t, src)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// DNS with an IP literal asks no server: the set is the address itself.
func ExampleDNS() {
	src, err := discovery.DNS("127.0.0.1:8080", "", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	src.Watch(ctx, func(eps []discovery.Endpoint, err error) {
		fmt.Println(eps, err)
		cancel() // one set is enough here; a Service keeps watching
	})
	// Output: [{127.0.0.1:8080 1 map[]}] <nil>
}
