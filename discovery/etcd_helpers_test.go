package discovery_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/outbound-go/outbound/discovery"
)

// etcdClient is a client of the test's own, for puts, deletes and leases.
func etcdClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// etcdCtx bounds one call of the test's client.
func etcdCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sourceSets runs src.Watch until the test ends and hands over what it
// reports.
type sourceSets struct {
	sets chan map[string]int // address -> weight
	errs chan error          // the latest errors; older ones are dropped
}

func watchSource(t testing.TB, src discovery.Source) *sourceSets {
	t.Helper()
	w := &sourceSets{sets: make(chan map[string]int), errs: make(chan error, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Watch(ctx, func(eps []discovery.Endpoint, err error) {
			if err != nil {
				select {
				case w.errs <- err:
				default:
				}
				return
			}
			set := map[string]int{}
			for _, ep := range eps {
				set[ep.Address] = ep.Weight
			}
			select {
			case w.sets <- set:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// waitSet waits (at most 10s) for the set want and returns when it came.
func (w *sourceSets) waitSet(t testing.TB, want map[string]int) time.Time {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	var last map[string]int
	for {
		select {
		case set := <-w.sets:
			if maps.Equal(set, want) {
				return time.Now()
			}
			last = set
		case <-deadline.C:
			t.Fatalf("no set %v within 10s; last %v", want, last)
		}
	}
}

// cutProxy forwards TCP connections to target until cut, which closes them
// all and refuses new ones until heal: a lost connection between one client
// and etcd, while etcd itself stays up.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			c.Close()
			up.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *cutProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Cut closes every forwarded connection and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Retarget sends new connections to target from now on.
func (p *cutProxy) Retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Heal forwards new connections again.
func (p *cutProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// endpointJSON is the value endpoints.Manager writes for addr with a weight.
func endpointJSON(addr string, weight int) string {
	return fmt.Sprintf(`{"Op":0,"Addr":%q,"Metadata":{"weight":%d}}`, addr, weight)
}
