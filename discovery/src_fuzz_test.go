package discovery

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// Fuzz targets for the two parsers of outside input: endpoint files and DNS
// answers. Seed corpora are in testdata/fuzz/<Name>/.

func FuzzParseEndpointFile(f *testing.F) {
	for _, s := range []string{
		"- address: 10.0.0.1:80\n  weight: 3\n- {address: users.internal:8080}\n",
		`[{"address": "[fd00::1]:443", "weight": 2, "metadata": {"zone": "a"}}]`,
		"[]", "", "null", "- address: a\n", "- address: [b:1\n", "---\n- a\n---\n",
		"- &x {address: a:1}\n- *x\n", "- address: a:1\n  weight: 0x10\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		eps, err := parseEndpointFile(data)
		if err != nil {
			if eps != nil {
				t.Fatalf("endpoints %v with error %v", eps, err)
			}
			for _, e := range unjoin(err) {
				var fe *FileError
				if !errors.As(e, &fe) || fe.Msg == "" || fe.Line < 0 {
					t.Fatalf("problem %#v is not a *FileError with a message", e)
				}
			}
			return
		}
		checkEndpoints(t, eps)
	})
}

func FuzzDNSAnswer(f *testing.F) {
	for _, m := range seedAnswers() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := new(dns.Msg)
		if msg.Unpack(data) != nil {
			return
		}
		qname := "users.test."
		if len(msg.Question) > 0 {
			qname = msg.Question[0].Name
		}
		addrs := answerAddrs(msg, qname)
		for _, a := range addrs {
			if !a.IsValid() || a.IsUnspecified() || a.Is4In6() {
				t.Fatalf("unusable address %v", a)
			}
		}
		if len(addrs) > 0 {
			slices.SortFunc(addrs, netip.Addr.Compare)
			checkEndpoints(t, addrEndpoints(slices.Compact(addrs), 8080))
		}
		recs := answerSRV(msg, qname)
		extra := extraAddrs(msg)
		eps := srvEndpoints(recs, func(target string) []netip.Addr {
			a := slices.Clone(extra[target])
			slices.SortFunc(a, netip.Addr.Compare)
			return slices.Compact(a)
		})
		checkEndpoints(t, eps)
		for _, ep := range eps {
			if ep.Metadata["srv_target"] == "" || ep.Metadata["priority"] == "" {
				t.Fatalf("endpoint %v lacks srv metadata", ep)
			}
		}
	})
}

// checkEndpoints fails unless eps is sorted, has unique dialable
// addresses and weights in 0..maxWeight.
func checkEndpoints(t *testing.T, eps []Endpoint) {
	t.Helper()
	for i, ep := range eps {
		if _, _, err := parseEndpointAddr(ep.Address); err != nil {
			t.Fatalf("endpoint %d: %v", i, err)
		}
		if ep.Weight < 0 || ep.Weight > maxWeight {
			t.Fatalf("endpoint %d: weight %d", i, ep.Weight)
		}
		if i > 0 && eps[i-1].Address >= ep.Address {
			t.Fatalf("endpoints not sorted and unique: %q then %q", eps[i-1].Address, ep.Address)
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// seedAnswers are DNS answers worth starting from: A/AAAA with a CNAME
// chain, SRV with additional records and several priorities, junk.
func seedAnswers() []*dns.Msg {
	mk := func(qname string, qtype uint16, answer, extra []string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(qname, qtype)
		m.Response = true
		for _, s := range answer {
			m.Answer = append(m.Answer, mustRR(s))
		}
		for _, s := range extra {
			m.Extra = append(m.Extra, mustRR(s))
		}
		return m
	}
	srv := "_http._tcp.users.test."
	return []*dns.Msg{
		mk("users.test.", dns.TypeA, []string{"users.test. 5 IN A 10.0.0.1", "users.test. 5 IN A 10.0.0.2"}, nil),
		mk("users.test.", dns.TypeAAAA, []string{"users.test. 5 IN AAAA fd00::1", "users.test. 5 IN AAAA ::ffff:10.0.0.1"}, nil),
		mk("www.test.", dns.TypeA, []string{"www.test. 5 IN CNAME lb.test.", "lb.test. 5 IN CNAME www.test.", "lb.test. 5 IN A 10.0.0.3", "x.test. 5 IN A 0.0.0.0"}, nil),
		mk(srv, dns.TypeSRV, []string{
			srv + " 5 IN SRV 10 3 8080 a.users.test.",
			srv + " 5 IN SRV 10 0 8081 b.users.test.",
			srv + " 5 IN SRV 20 1 8082 c.users.test.",
			srv + " 5 IN SRV 0 1 0 d.users.test.",
			srv + " 5 IN SRV 0 1 80 .",
		}, []string{
			"a.users.test. 5 IN A 10.0.0.1",
			"a.users.test. 5 IN AAAA fd00::1",
			"b.users.test. 5 IN A 10.0.0.2",
			"c.users.test. 5 IN A 10.0.0.3",
		}),
	}
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// TestSeedCorpusPresent keeps the committed seed corpora from vanishing.
func TestSeedCorpusPresent(t *testing.T) {
	for _, name := range []string{"FuzzParseEndpointFile", "FuzzDNSAnswer"} {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(entries) == 0 {
			t.Errorf("testdata/fuzz/%s: no seed corpus (%v)", name, err)
		}
	}
}
