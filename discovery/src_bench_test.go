package discovery

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Sources run once per refresh or file change, not per request; these
// benchmarks size that work for large sets.

func BenchmarkParseEndpointFile(b *testing.B) {
	for _, n := range []int{10, 1000} {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, "- address: 10.0.%d.%d:8080\n  weight: %d\n", i/256, i%256, i%5)
		}
		data := []byte(sb.String())
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := parseEndpointFile(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSRVAnswer(b *testing.B) {
	const name = "_http._tcp.users.test."
	for _, n := range []int{10, 100} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		for i := range n {
			target := fmt.Sprintf("n%d.users.test.", i)
			m.Answer = append(m.Answer, mustRR(fmt.Sprintf("%s 5 IN SRV 10 %d 8080 %s", name, i%4, target)))
			m.Extra = append(m.Extra, mustRR(fmt.Sprintf("%s 5 IN A 10.0.%d.%d", target, i/256, i%256)))
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				extra := extraAddrs(m)
				eps := srvEndpoints(answerSRV(m, name), func(t string) []netip.Addr { return extra[t] })
				if len(eps) != n {
					b.Fatalf("%d endpoints, want %d", len(eps), n)
				}
			}
		})
	}
}
