package httpbench_test

import (
	"net/http"
	"testing"
)

// BenchmarkHTTPNoop is the pure middleware cost: every contender over a
// transport that returns a fresh canned 200 at once.
func BenchmarkHTTPNoop(b *testing.B) {
	for _, c := range contenders() {
		b.Run(c.name+"/serial", func(b *testing.B) { benchSerial(b, c.build(b, noopEnv())) })
		b.Run(c.name+"/parallel", func(b *testing.B) { benchParallel(b, c.build(b, noopEnv())) })
	}
}

// BenchmarkHTTPLoopback is what each contender adds to a real keep-alive
// round trip to a server on 127.0.0.1 that answers 100 bytes.
func BenchmarkHTTPLoopback(b *testing.B) {
	addrs := startUpstream(b, okHandler())
	for _, c := range contenders() {
		b.Run(c.name+"/serial", func(b *testing.B) {
			benchSerial(b, c.build(b, env{base: loopbackTransport(b), addrs: addrs}))
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			benchParallel(b, c.build(b, env{base: loopbackTransport(b), addrs: addrs}))
		})
	}
}

func benchSerial(b *testing.B, s stack) {
	req, err := http.NewRequest(http.MethodGet, s.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		code, err := call(s.rt, req)
		if err != nil || code != http.StatusOK {
			b.Fatalf("got %d, %v; want 200", code, err)
		}
	}
}

func benchParallel(b *testing.B, s stack) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest(http.MethodGet, s.url, nil)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			code, err := call(s.rt, req)
			if err != nil || code != http.StatusOK {
				b.Errorf("got %d, %v; want 200", code, err)
				return
			}
		}
	})
}
