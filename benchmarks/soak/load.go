package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/time/rate"
)

// Error kinds of a request that got no complete answer.
const (
	errTimeout = iota // the request's deadline passed
	errReset          // connection reset by the ambassador
	errEOF            // connection closed before or in the middle of an answer
	errRefused        // connection refused
	errH2             // HTTP/2 stream reset by the ambassador
	errOther
	numErrKinds
)

var errKindNames = [numErrKinds]string{"timeout", "reset", "eof", "refused", "h2-reset", "other"}

// counts are the request outcomes so far: answers by status code and
// failures by kind.
type counts struct {
	total  atomic.Int64
	status [600]atomic.Int64
	errs   [numErrKinds]atomic.Int64

	mu        sync.Mutex
	firstErrs map[int]string // one example message per error kind
}

// snapshot is a copy of counts at one moment.
type snapshot struct {
	total  int64
	status map[int]int64 // non-zero entries only
	errs   [numErrKinds]int64
}

func (c *counts) snapshot() snapshot {
	s := snapshot{total: c.total.Load(), status: map[int]int64{}}
	for code := range c.status {
		if v := c.status[code].Load(); v != 0 {
			s.status[code] = v
		}
	}
	for k := range c.errs {
		s.errs[k] = c.errs[k].Load()
	}
	return s
}

// ok is the number of 2xx answers.
func (s snapshot) ok() int64 {
	var n int64
	for code, v := range s.status {
		if code >= 200 && code < 300 {
			n += v
		}
	}
	return n
}

// failures formats every outcome other than 2xx as "503:12 eof:3 ...",
// status codes first, or "-" when there is none.
func (s snapshot) failures() string {
	var parts []string
	codes := make([]int, 0, len(s.status))
	for code := range s.status {
		if code < 200 || code >= 300 {
			codes = append(codes, code)
		}
	}
	sort.Ints(codes)
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%d:%d", code, s.status[code]))
	}
	for k, v := range s.errs {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", errKindNames[k], v))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// record counts one outcome: the status of a whole answer, or err.
func (c *counts) record(status int, err error) {
	c.total.Add(1)
	if err == nil {
		if status > 0 && status < len(c.status) {
			c.status[status].Add(1)
		}
		return
	}
	k := classify(err)
	c.errs[k].Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.firstErrs[k]; !seen {
		if c.firstErrs == nil {
			c.firstErrs = map[int]string{}
		}
		c.firstErrs[k] = err.Error()
	}
}

// classify names the kind of a request failure.
func classify(err error) int {
	var ne net.Error
	var se http2.StreamError // net/http's bundled stream error converts to it in errors.As
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return errReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errEOF
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.As(err, &se):
		return errH2
	}
	return errOther
}

// clients are the three ways the soak's traffic reaches the ambassador.
// Each worker has a keep-alive transport of its own, so the number of
// client connections stays at about one per worker and listener instead of
// following the peaks of a shared pool (which the goroutine and fd counts
// of the ambassador would follow too).
type clients struct {
	keepAlive []*http.Client // HTTP/1.1 keep-alive, one per worker
	fresh     *http.Client   // HTTP/1.1, a new connection per request
	h2c       *http.Client   // HTTP/2 with prior knowledge: one multiplexed connection
}

func newClients(workers int) *clients {
	h1 := func(keepAlive bool) *http.Client {
		return &http.Client{Transport: &http.Transport{
			DialContext:       dialLoopback,
			DisableKeepAlives: !keepAlive,
			IdleConnTimeout:   time.Minute,
		}}
	}
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{DialContext: dialLoopback, Protocols: protos}
	c := &clients{fresh: h1(false), h2c: &http.Client{Transport: h2c}}
	for range workers {
		c.keepAlive = append(c.keepAlive, h1(true))
	}
	return c
}

func (c *clients) closeIdle() {
	for _, ka := range c.keepAlive {
		ka.CloseIdleConnections()
	}
	c.fresh.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
}

// paths are the routes of the soak config with their share of traffic.
var paths = []struct {
	prefix string
	weight int
}{
	{"/fast/", 30}, {"/h2/", 10}, {"/slow/", 15}, {"/flaky/", 15},
	{"/broken/", 10}, {"/limited/", 10}, {"/split/", 10},
}

// load drives the traffic: workers goroutines, together at most rps
// requests per second, each request with its own timeout.
type load struct {
	amb     addrs
	clients *clients
	limiter *rate.Limiter
	timeout time.Duration
	counts  counts
	bodies  [][]byte
}

// run sends requests until ctx ends and returns when every worker has
// finished its last request.
func (l *load) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 0x50a4))
			for l.limiter.Wait(ctx) == nil {
				l.one(i, rng)
			}
		}()
	}
	wg.Wait()
}

// one sends one request of a random kind and records its outcome. It is
// not bound to the run's context: a request started before the end
// finishes, within l.timeout.
func (l *load) one(worker int, rng *rand.Rand) {
	c, host := l.pick(worker, rng)
	method, body := http.MethodGet, []byte(nil)
	if rng.IntN(10) < 3 {
		method, body = http.MethodPost, l.bodies[rng.IntN(len(l.bodies))]
	}
	url := fmt.Sprintf("http://%s%sx?size=%d", host, l.path(rng, host), 64<<rng.IntN(9))
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		l.counts.record(0, err)
		return
	}
	if body == nil {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	resp, err := c.Do(req)
	if err != nil {
		l.counts.record(0, err)
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	l.counts.record(resp.StatusCode, err)
}

// pick chooses the client (keep-alive 50 %, new connection 20 %, h2c 30 %)
// and the listener (the one-service listener for a tenth of requests).
func (l *load) pick(worker int, rng *rand.Rand) (*http.Client, string) {
	host := l.amb.routes
	if rng.IntN(10) == 0 {
		host = l.amb.single
	}
	switch n := rng.IntN(10); {
	case n < 5:
		return l.clients.keepAlive[worker], host
	case n < 7:
		return l.clients.fresh, host
	default:
		return l.clients.h2c, host
	}
}

// path picks a route by weight; on the one-service listener every path
// goes to service fast.
func (l *load) path(rng *rand.Rand, host string) string {
	if host == l.amb.single {
		return "/any/"
	}
	total := 0
	for _, p := range paths {
		total += p.weight
	}
	n := rng.IntN(total)
	for _, p := range paths {
		if n < p.weight {
			return p.prefix
		}
		n -= p.weight
	}
	return paths[0].prefix
}

// requestBodies are the POST bodies: 1 KiB to 32 KiB.
func requestBodies() [][]byte {
	var out [][]byte
	for size := 1 << 10; size <= 32<<10; size <<= 1 {
		out = append(out, bytes.Repeat([]byte{'p'}, size))
	}
	return out
}
