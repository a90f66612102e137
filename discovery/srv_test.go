package discovery_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

const srvName = "_http._tcp.users.test"

// srvZone serves a users service: a (weight 3) and b (weight 1) at priority
// 10, c as the priority-20 backup.
func srvZone(t *testing.T) *testDNS {
	t.Helper()
	d := startDNS(t)
	d.Set(t, srvName, dns.TypeSRV,
		srvName+". 5 IN SRV 10 3 8080 a.users.test.",
		srvName+". 5 IN SRV 10 1 8081 b.users.test.",
		srvName+". 5 IN SRV 20 5 8082 c.users.test.")
	d.Set(t, "a.users.test", dns.TypeA, "a.users.test. 5 IN A 10.0.0.1")
	d.Set(t, "b.users.test", dns.TypeA, "b.users.test. 5 IN A 10.0.0.2")
	d.Set(t, "c.users.test", dns.TypeA, "c.users.test. 5 IN A 10.0.0.3")
	return d
}

func TestSRVWeightsAndLowestPriority(t *testing.T) {
	d := srvZone(t)
	src, err := discovery.SRV(srvName, d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)

	eps := w.nextSet(t)
	assert.Equal(t, []discovery.Endpoint{
		{Address: "10.0.0.1:8080", Weight: 3, Metadata: map[string]string{"srv_target": "a.users.test", "priority": "10"}},
		{Address: "10.0.0.2:8081", Weight: 1, Metadata: map[string]string{"srv_target": "b.users.test", "priority": "10"}},
	}, eps, "priority 20 is a backup, not in use")

	// The weights carry a 3:1 split: a weighted random pick over 4,000
	// requests (fixed seed) lands within a few percent of it.
	picks := pickWeighted(eps, 4000)
	assert.InDelta(t, 0.75, float64(picks["10.0.0.1:8080"])/4000, 0.03, "picks: %v", picks)
}

// pickWeighted draws n endpoints with probability proportional to weight.
func pickWeighted(eps []discovery.Endpoint, n int) map[string]int {
	r := rand.New(rand.NewPCG(1, 2))
	total := 0
	for _, ep := range eps {
		total += ep.Weight
	}
	counts := make(map[string]int)
	for range n {
		x := r.IntN(total)
		for _, ep := range eps {
			if x < ep.Weight {
				counts[ep.Address]++
				break
			}
			x -= ep.Weight
		}
	}
	return counts
}

func TestSRVFallsToNextPriority(t *testing.T) {
	t.Run("records removed", func(t *testing.T) {
		d := srvZone(t)
		src, err := discovery.SRV(srvName, d.Addr, refresh)
		require.NoError(t, err)
		w := watch(t, src)
		require.Equal(t, []string{"10.0.0.1:8080", "10.0.0.2:8081"}, addrs(w.nextSet(t)))

		d.Set(t, srvName, dns.TypeSRV, srvName+". 5 IN SRV 20 5 8082 c.users.test.")
		eps := w.nextSet(t)
		assert.Equal(t, []string{"10.0.0.3:8082"}, addrs(eps))
		assert.Equal(t, "20", eps[0].Metadata["priority"])
	})
	t.Run("targets do not resolve", func(t *testing.T) {
		d := srvZone(t)
		d.Set(t, "a.users.test", dns.TypeA)
		d.Set(t, "b.users.test", dns.TypeA)
		src, err := discovery.SRV(srvName, d.Addr, refresh)
		require.NoError(t, err)
		w := watch(t, src)
		assert.Equal(t, []string{"10.0.0.3:8082"}, addrs(w.nextSet(t)))
	})
}

func TestSRVUsesAdditionalSection(t *testing.T) {
	d := startDNS(t)
	d.Set(t, srvName, dns.TypeSRV,
		srvName+". 5 IN SRV 1 2 8080 a.node.test.",
		srvName+". 5 IN SRV 1 2 8080 b.node.test.")
	d.SetExtra(t, srvName, dns.TypeSRV,
		"a.node.test. 5 IN A 10.0.1.1",
		"b.node.test. 5 IN A 10.0.1.2",
		"b.node.test. 5 IN AAAA fd00::2")
	src, err := discovery.SRV(srvName, d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)

	eps := w.nextSet(t)
	// b is dual-stack: its share (2) is split over its two addresses, and
	// every weight is scaled by 2 so the split stays whole: a 4, b 2+2.
	assert.Equal(t, map[string]int{"10.0.1.1:8080": 4, "10.0.1.2:8080": 2, "[fd00::2]:8080": 2}, weights(eps))
	assert.Zero(t, d.Queries("udp", "a.node.test", dns.TypeA), "targets in the additional section are not asked for")
	assert.Zero(t, d.Queries("udp", "b.node.test", dns.TypeAAAA))
}

func TestSRVWeightZeroIsOne(t *testing.T) {
	d := startDNS(t)
	d.Set(t, srvName, dns.TypeSRV,
		srvName+". 5 IN SRV 0 0 80 a.users.test.",
		srvName+". 5 IN SRV 0 100 80 b.users.test.",
		srvName+". 5 IN SRV 0 0 80 .") // "not available here": ignored
	d.Set(t, "a.users.test", dns.TypeA, "a.users.test. 5 IN A 10.0.0.1")
	d.Set(t, "b.users.test", dns.TypeA, "b.users.test. 5 IN A 10.0.0.2")
	src, err := discovery.SRV(srvName, d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)
	assert.Equal(t, map[string]int{"10.0.0.1:80": 1, "10.0.0.2:80": 100}, weights(w.nextSet(t)))
}

func TestSRVOutageKeepsLastSet(t *testing.T) {
	d := srvZone(t)
	src, err := discovery.SRV(srvName, d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:8080", "10.0.0.2:8081"}, addrs(w.nextSet(t)))

	d.SetRcode(dns.RcodeServerFailure)
	for range 3 {
		assert.ErrorContains(t, w.nextErr(t), "SERVFAIL")
	}
	w.noSet(t)

	d.SetRcode(dns.RcodeSuccess)
	d.Set(t, srvName, dns.TypeSRV, srvName+". 5 IN SRV 10 3 8080 a.users.test.")
	assert.Equal(t, []string{"10.0.0.1:8080"}, addrs(w.nextSet(t)))
}

// srvOnClock watches srvZone's SRV name, refreshed only when the test steps
// the returned clock, and returns once the first set (a and b, priority 10)
// was reported.
func srvOnClock(t *testing.T) (*testDNS, *watcher, *stepClock) {
	t.Helper()
	d := srvZone(t)
	src, err := discovery.SRV(srvName, d.Addr, time.Hour)
	require.NoError(t, err)
	clk := newStepClock()
	w := watch(t, src, clk)
	clk.sleeping(t)
	clk.step(t) // the first lookup
	require.Equal(t, []string{"10.0.0.1:8080", "10.0.0.2:8081"}, addrs(w.nextSet(t)))
	return d, w, clk
}

func TestSRVTargetLookupFailureKeepsItsAddresses(t *testing.T) {
	d, w, clk := srvOnClock(t)

	// b's lookup fails (SERVFAIL): b keeps its last addresses.
	d.SetNameRcode("b.users.test", dns.RcodeServerFailure)
	before := d.Queries("udp", "b.users.test", dns.TypeA)
	for range 3 {
		clk.step(t)
	}
	assert.GreaterOrEqual(t, d.Queries("udp", "b.users.test", dns.TypeA), before+3, "b is asked again every refresh")
	w.noSet(t)

	// b's SRV record goes away: b leaves the set.
	d.Set(t, srvName, dns.TypeSRV, srvName+". 5 IN SRV 10 3 8080 a.users.test.")
	clk.step(t)
	assert.Equal(t, []string{"10.0.0.1:8080"}, addrs(w.nextSet(t)))
}

// A target the server says has no address (its records removed: NODATA;
// its name gone: NXDOMAIN) leaves the set, and once its whole priority
// group has none, the next priority takes over, as it would have had the
// group never resolved; a round in which no target resolves keeps the last
// set.
func TestSRVTargetWithoutAddressesLeaves(t *testing.T) {
	d, w, clk := srvOnClock(t)

	d.Set(t, "b.users.test", dns.TypeA) // NODATA: a.users.test still has records
	clk.step(t)
	assert.Equal(t, []string{"10.0.0.1:8080"}, addrs(w.nextSet(t)))

	d.Set(t, "a.users.test", dns.TypeA) // now NXDOMAIN: no record under the name
	clk.step(t)
	eps := w.nextSet(t)
	assert.Equal(t, []string{"10.0.0.3:8082"}, addrs(eps), "priority 20 takes over")
	assert.Equal(t, "20", eps[0].Metadata["priority"])

	d.Set(t, "c.users.test", dns.TypeA)
	clk.step(t)
	assert.ErrorContains(t, w.nextErr(t), "no target resolved", "no target resolves: the last set stays")
	w.noSet(t)
}

func TestSRVRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name, resolver string
		refresh        time.Duration
		want           string
	}{
		{"", "", 0, `"" is not a DNS name`},
		{"_http._tcp.users .test", "", 0, "is not a DNS name"},
		{srvName, "127.0.0.1", 0, `resolver: "127.0.0.1" is not host:port`},
		{srvName, "", -time.Millisecond, "refresh: must be ≥ 0"},
	}
	for _, tt := range tests {
		src, err := discovery.SRV(tt.name, tt.resolver, tt.refresh)
		assert.Nil(t, src)
		assert.ErrorContains(t, err, tt.want)
	}
}

// SRV against a DNS server on a loopback port: two targets weighted 3:1 at
// priority 10 (a backup at priority 20 is not used), with their addresses
// in the additional section.
func ExampleSRV() {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	zone := []string{
		"_http._tcp.users.test. 5 IN SRV 10 3 8080 a.users.test.",
		"_http._tcp.users.test. 5 IN SRV 10 1 8080 b.users.test.",
		"_http._tcp.users.test. 5 IN SRV 20 1 8080 c.users.test.",
		"a.users.test. 5 IN A 10.0.0.1",
		"b.users.test. 5 IN A 10.0.0.2",
	}
	server := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg).SetReply(req)
		for _, line := range zone {
			rr, _ := dns.NewRR(line)
			if rr.Header().Rrtype == dns.TypeSRV {
				resp.Answer = append(resp.Answer, rr)
			} else {
				resp.Extra = append(resp.Extra, rr)
			}
		}
		_ = w.WriteMsg(resp)
	})}
	started := make(chan struct{})
	server.NotifyStartedFunc = func() { close(started) }
	go func() { _ = server.ActivateAndServe() }()
	<-started
	defer server.Shutdown()

	src, err := discovery.SRV("_http._tcp.users.test", pc.LocalAddr().String(), 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	src.Watch(ctx, func(eps []discovery.Endpoint, err error) {
		for _, ep := range eps {
			fmt.Println(ep.Address, ep.Weight, ep.Metadata["srv_target"], ep.Metadata["priority"])
		}
		cancel() // a Service would keep watching
	})
	// Output:
	// 10.0.0.1:8080 3 a.users.test 10
	// 10.0.0.2:8080 1 b.users.test 10
}

// TestSRVWeightsThroughService runs the SRV source into a Service and counts
// what its balancers pick: weights 3:1 give about 3:1 of 4,000 picks.
func TestSRVWeightsThroughService(t *testing.T) {
	for _, balancer := range []string{discovery.RoundRobin, discovery.LeastRequest, discovery.EWMA} {
		t.Run(balancer, func(t *testing.T) {
			d := srvZone(t)
			src, err := discovery.SRV(srvName, d.Addr, refresh)
			require.NoError(t, err)
			svc, err := discovery.NewService("users", src, discovery.Config{Balancer: balancer})
			require.NoError(t, err)
			defer svc.Close()

			counts := map[string]int{}
			for range 4000 {
				ep, err := svc.Pick(context.Background())
				require.NoError(t, err)
				counts[ep]++
			}
			assert.Len(t, counts, 2, "the priority-20 backup gets nothing: %v", counts)
			assert.InDelta(t, 0.75, float64(counts["10.0.0.1:8080"])/4000, 0.03, "picks: %v", counts)
		})
	}
}

// Two SRV targets that resolve to the same address and port are one
// endpoint whose weight is the sum of theirs (it gets both records' share
// of the traffic), with the first record's metadata.
func TestSRVTargetsOnOneAddressMerge(t *testing.T) {
	d := startDNS(t)
	d.Set(t, srvName, dns.TypeSRV,
		srvName+". 5 IN SRV 10 3 8080 a.users.test.",
		srvName+". 5 IN SRV 10 1 8080 b.users.test.",
		srvName+". 5 IN SRV 10 2 8081 b.users.test.")
	d.Set(t, "a.users.test", dns.TypeA, "a.users.test. 5 IN A 10.0.0.1")
	d.Set(t, "b.users.test", dns.TypeA, "b.users.test. 5 IN A 10.0.0.1")
	src, err := discovery.SRV(srvName, d.Addr, refresh)
	require.NoError(t, err)
	w := watch(t, src)

	assert.Equal(t, []discovery.Endpoint{
		{Address: "10.0.0.1:8080", Weight: 4, Metadata: map[string]string{"srv_target": "a.users.test", "priority": "10"}},
		{Address: "10.0.0.1:8081", Weight: 2, Metadata: map[string]string{"srv_target": "b.users.test", "priority": "10"}},
	}, w.nextSet(t))
}
