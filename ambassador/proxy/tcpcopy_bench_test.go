package proxy

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start (client, pair and
// server together: they share the process), which a loaded machine
// disturbs less than wall time.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// benchPair joins a client and a server connection on loopback through a
// tcpPair (splice or pooled buffer) and returns both ends; stop closes
// everything and waits for the pair.
func benchPair(b *testing.B, splice bool) (client, server net.Conn, stop func()) {
	b.Helper()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	client, err = net.Dial("tcp", front.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	in, _ := front.Accept()
	up, err := net.Dial("tcp", back.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, _ = back.Accept()
	_ = front.Close()
	_ = back.Close()
	p := &tcpPair{client: in, up: up, cRaw: in, uRaw: up, splice: splice}
	done := make(chan struct{})
	go func() {
		p.run()
		close(done)
	}()
	return client, server, func() {
		_ = client.Close()
		_ = server.Close()
		<-done
	}
}

// BenchmarkTCPCopy compares the two copy paths of tcpPair on loopback:
// bulk (1 MiB written per op, the server discarding) and ping-pong (a
// 64-byte request echoed, like a small cache command).
func BenchmarkTCPCopy(b *testing.B) {
	for _, path := range []struct {
		name   string
		splice bool
	}{{"splice", true}, {"buffer", false}} {
		b.Run("bulk/path="+path.name, func(b *testing.B) {
			client, server, stop := benchPair(b, path.splice)
			defer stop()
			got := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, server)
				got <- n
			}()
			chunk := make([]byte, 1<<20)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range b.N {
				if _, err := client.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			_ = client.(*net.TCPConn).CloseWrite()
			if n := <-got; n != int64(b.N)*int64(len(chunk)) {
				b.Fatalf("server read %d bytes, want %d", n, int64(b.N)*int64(len(chunk)))
			}
			reportCPU(b, cpu0)
		})
		b.Run("pingpong/path="+path.name, func(b *testing.B) {
			client, server, stop := benchPair(b, path.splice)
			defer stop()
			go func() { _, _ = io.Copy(server, server) }()
			msg := make([]byte, 64)
			reply := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range b.N {
				if _, err := client.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(client, reply); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkTCPEmptyRead is the read a goroutine relay makes after each
// message: read(2) on a loopback socket with nothing queued, which returns
// EAGAIN (the netpoller then parks the goroutine). An event loop that trusts
// epoll's readiness does not make it; see benchmarks/README.md, "TCP hop".
func BenchmarkTCPEmptyRead(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if peer := <-accepted; peer != nil {
		defer func() { _ = peer.Close() }()
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	var other error
	err = raw.Read(func(fd uintptr) bool {
		for b.Loop() {
			if _, err := syscall.Read(int(fd), buf); err != syscall.EAGAIN {
				other = err
				return true
			}
		}
		return true
	})
	if err != nil || other != nil {
		b.Fatalf("want EAGAIN on every read: %v %v", err, other)
	}
}
