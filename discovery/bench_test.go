package discovery_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/outbound-go/outbound/discovery"
)

func benchService(b *testing.B, balancer string, n int) *discovery.Service {
	b.Helper()
	src := newSetSource()
	s := newService(b, src, discovery.Config{Balancer: balancer})
	eps := make([]discovery.Endpoint, n)
	for i := range eps {
		eps[i] = discovery.Endpoint{Address: fmt.Sprintf("10.%d.%d.%d:80", i>>16&255, i>>8&255, i&255), Weight: 1 + i%3}
	}
	src.send(b, eps, nil)
	return s
}

// BenchmarkPick measures one pick (balancer choice plus readiness checks).
func BenchmarkPick(b *testing.B) {
	for _, bal := range balancers {
		for _, n := range []int{10, 1000, 100000} {
			b.Run(fmt.Sprintf("%s/%d", bal, n), func(b *testing.B) {
				s := benchService(b, bal, n)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := s.Pick(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPickParallel is BenchmarkPick from GOMAXPROCS goroutines.
func BenchmarkPickParallel(b *testing.B) {
	for _, bal := range balancers {
		for _, n := range []int{10, 1000, 100000} {
			b.Run(fmt.Sprintf("%s/%d", bal, n), func(b *testing.B) {
				s := benchService(b, bal, n)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.Pick(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkPickWithHealth adds a Health check on every candidate.
func BenchmarkPickWithHealth(b *testing.B) {
	for _, bal := range balancers {
		b.Run(bal, func(b *testing.B) {
			src := newSetSource()
			s := newService(b, src, discovery.Config{Balancer: bal},
				discovery.WithHealth(discovery.HealthFunc(func(ep string) bool { return ep != "10.0.0.1:80" })))
			src.Set(b, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Pick(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nopTransport struct{ resp *http.Response }

func (t nopTransport) RoundTrip(*http.Request) (*http.Response, error) { return t.resp, nil }

// BenchmarkRoundTrip is the whole discovery layer over a no-op transport.
func BenchmarkRoundTrip(b *testing.B) {
	for _, bal := range balancers {
		b.Run(bal, func(b *testing.B) {
			s := benchService(b, bal, 10)
			rt := s.RoundTripper(nopTransport{resp: &http.Response{StatusCode: 200}})
			req, _ := http.NewRequest("GET", "http://users/v1/users/42", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
