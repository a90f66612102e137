// Command grpcload drives the gRPC proxy benchmark (benchmarks/proxy/grpc.sh):
// for a fixed time it keeps -c unary grpc.health.v1.Health/Check calls in
// flight over one ClientConn (h2c, as an application would dial a localhost
// ambassador) and prints one line:
//
//	calls=N errors=E rps=R p50_us=P p99_us=Q
//
// Calls during the warm-up are not counted. Every call has a 5 s deadline;
// a failed call counts as an error and its latency is not recorded.
//
// Usage:
//
//	grpcload -addr 127.0.0.1:18090 -c 32 -d 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "loopback host:port to call")
	conc := flag.Int("c", 1, "calls kept in flight")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", 500*time.Millisecond, "unmeasured warm-up before -d")
	flag.Parse()
	if err := run(*addr, *conc, *dur, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(1)
	}
}

func run(addr string, conc int, dur, warm time.Duration) error {
	if err := loopback.Check(addr); err != nil {
		return err
	}
	if conc < 1 || conc > 4096 {
		return fmt.Errorf("-c %d: want 1..4096", conc)
	}
	if dur <= 0 || dur > 10*time.Minute {
		return fmt.Errorf("-d %v: want a duration in (0, 10m]", dur)
	}
	if warm < 0 || warm > time.Minute {
		return fmt.Errorf("-warmup %v: want a duration in [0, 1m]", warm)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)

	var errs atomic.Int64
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+dur)
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<16)
			req := &healthpb.HealthCheckRequest{}
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.Check(ctx, req)
				cancel()
				if !t0.Before(measureFrom) {
					if err != nil {
						errs.Add(1)
					} else {
						mine = append(mine, time.Since(t0))
					}
				}
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return fmt.Errorf("no call succeeded (errors: %d)", errs.Load())
	}
	slices.Sort(all)
	q := func(p float64) int64 { return all[int(p*float64(len(all)-1))].Microseconds() }
	fmt.Printf("calls=%d errors=%d rps=%.0f p50_us=%d p99_us=%d\n",
		len(all), errs.Load(), float64(len(all))/dur.Seconds(), q(0.50), q(0.99))
	return nil
}
