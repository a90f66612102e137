package discovery_test

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// testDNS is a real DNS server on a loopback port, UDP and TCP, whose
// records a test changes while it runs.
type testDNS struct {
	Addr string // host:port of both the UDP and the TCP server

	mu       sync.Mutex
	answers  map[string][]dns.RR // key: canonical name + "/" + type
	extra    map[string][]dns.RR
	rcode    int             // answered to every query when not RcodeSuccess
	rcodes   map[string]int  // canonical name → rcode answered to its queries
	truncate map[string]bool // names whose UDP answers are truncated
	queries  map[string]int  // "udp "/"tcp " + key → count

	udp, tcp *dns.Server
	stopOnce sync.Once
}

func dnsKey(name string, qtype uint16) string {
	return dns.CanonicalName(name) + "/" + dns.TypeToString[qtype]
}

// startDNS starts the server; it is shut down when the test ends.
func startDNS(t testing.TB) *testDNS {
	t.Helper()
	d := &testDNS{
		answers:  make(map[string][]dns.RR),
		extra:    make(map[string][]dns.RR),
		truncate: make(map[string]bool),
		rcodes:   make(map[string]int),
		queries:  make(map[string]int),
	}
	// UDP on an ephemeral port, then TCP on the same port (retried in the
	// rare case another socket holds that TCP port).
	var pc net.PacketConn
	var ln net.Listener
	for range 10 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	require.NotNil(t, pc, "no port free for both UDP and TCP")
	d.Addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: handler}
	d.tcp = &dns.Server{Listener: ln, Handler: handler}
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(d.Stop)
	return d
}

// Stop shuts both servers down; queries then fail (connection refused).
func (d *testDNS) Stop() {
	d.stopOnce.Do(func() {
		_ = d.udp.Shutdown()
		_ = d.tcp.Shutdown()
	})
}

// Set replaces the answer records of name and type; rrs are zone-file lines
// such as "users.test. 5 IN A 10.0.0.1". No rrs removes them.
func (d *testDNS) Set(t testing.TB, name string, qtype uint16, rrs ...string) {
	t.Helper()
	d.set(t, d.answers, name, qtype, rrs)
}

// SetExtra sets the additional-section records sent with answers for name
// and type.
func (d *testDNS) SetExtra(t testing.TB, name string, qtype uint16, rrs ...string) {
	t.Helper()
	d.set(t, d.extra, name, qtype, rrs)
}

func (d *testDNS) set(t testing.TB, m map[string][]dns.RR, name string, qtype uint16, rrs []string) {
	t.Helper()
	parsed := make([]dns.RR, 0, len(rrs))
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		require.NoError(t, err, s)
		parsed = append(parsed, rr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(parsed) == 0 {
		delete(m, dnsKey(name, qtype))
		return
	}
	m[dnsKey(name, qtype)] = parsed
}

// SetRcode makes the server answer every query with rcode (dns.RcodeServerFailure,
// say); dns.RcodeSuccess restores normal answers.
func (d *testDNS) SetRcode(rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcode = rcode
}

// SetNameRcode makes the server answer queries for name alone with rcode
// (dns.RcodeServerFailure, say); dns.RcodeSuccess restores its answers.
func (d *testDNS) SetNameRcode(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(d.rcodes, dns.CanonicalName(name))
		return
	}
	d.rcodes[dns.CanonicalName(name)] = rcode
}

// Truncate makes UDP answers for name come back empty with the TC bit set,
// so only a client that retries over TCP gets the records.
func (d *testDNS) Truncate(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.truncate[dns.CanonicalName(name)] = true
}

// Queries returns how many queries for name and type came over network
// ("udp" or "tcp").
func (d *testDNS) Queries(network, name string, qtype uint16) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[network+" "+dnsKey(name, qtype)]
}

func (d *testDNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	network := "udp"
	if strings.HasPrefix(w.LocalAddr().Network(), "tcp") {
		network = "tcp"
	}
	d.mu.Lock()
	if len(req.Question) == 1 {
		q := req.Question[0]
		key := dnsKey(q.Name, q.Qtype)
		d.queries[network+" "+key]++
		switch {
		case d.rcode != dns.RcodeSuccess:
			resp.Rcode = d.rcode
		case d.rcodes[dns.CanonicalName(q.Name)] != dns.RcodeSuccess:
			resp.Rcode = d.rcodes[dns.CanonicalName(q.Name)]
		case network == "udp" && d.truncate[dns.CanonicalName(q.Name)]:
			resp.Truncated = true
		default:
			resp.Answer = append(resp.Answer, d.answers[key]...)
			resp.Extra = append(resp.Extra, d.extra[key]...)
			if len(resp.Answer) == 0 && !d.known(q.Name) {
				resp.Rcode = dns.RcodeNameError
			}
		}
	}
	d.mu.Unlock()
	_ = w.WriteMsg(resp)
}

// known reports whether any record exists under name (NOERROR/NODATA rather
// than NXDOMAIN). d.mu is held.
func (d *testDNS) known(name string) bool {
	prefix := dns.CanonicalName(name) + "/"
	for k := range d.answers {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
