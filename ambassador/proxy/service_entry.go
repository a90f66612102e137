package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/ambassador"
)

const retiredBit = int64(1) << 62

// serviceEntry is one service's stack with its reverse proxy and bulkhead.
// Requests hold a reference while they use it; a reload retires entries
// that were removed or changed, and the stack closes after the last
// reference is released.
type serviceEntry struct {
	name  string
	cfg   ambassador.ServiceConfig
	stack *ambassador.Stack // nil for a tcp service
	proxy *httputil.ReverseProxy
	tcp   *tcpService // set for a service of protocol tcp (tcpservice.go)
	// nativeConn is the native gRPC path's connection (grpcnative.go), nil
	// where gRPC takes the ReverseProxy path; timeout bounds its calls.
	nativeConn *grpc.ClientConn
	timeout    time.Duration
	// maxActive is max_concurrent_requests (0: unlimited); active counts
	// the requests holding a slot. An atomic counter, not a channel: a
	// request takes a slot with one Add and no lock.
	maxActive int64
	active    atomic.Int64

	grpc grpcConn // transcoding's ClientConn, dialed on first use (transcode.go)

	refs      atomic.Int64 // in-flight requests | retiredBit
	closeOnce sync.Once
	logger    *slog.Logger
}

func (s *Server) newServiceEntry(name string, c ambassador.ServiceConfig) (*serviceEntry, error) {
	c.Name = name
	if c.Protocol == ambassador.ProtocolTCP {
		return s.newTCPEntry(name, c)
	}
	stack, err := ambassador.NewStack(c, s.opts.stack...)
	if err != nil {
		return nil, err
	}
	e := &serviceEntry{name: name, cfg: c, stack: stack, logger: s.opts.logger}
	e.maxActive = int64(c.MaxConcurrentRequests)
	preserve := c.HostHeader == ambassador.HostPreserve
	h2c := c.Protocol == ambassador.ProtocolH2C
	e.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The logical host: the stack's discovery layer replaces it by
			// the endpoint it picks for each attempt.
			u := pr.Out.URL
			u.Scheme = "http"
			u.Host = name
			u.User = nil
			u.Opaque = ""
			if pr.In.Method == http.MethodOptions && pr.In.URL.Opaque == "*" {
				u.Opaque = "*" // the server-wide OPTIONS (see ServeHTTP)
			}
			// The query as the client wrote it. ReverseProxy re-encodes a
			// query holding a ';' or a bad %-escape from what url.ParseQuery
			// accepts (dropping the rest, reordering what stays) before
			// Rewrite; the ambassador decides nothing on the query, so the
			// upstream gets it byte for byte, as from any other proxy.
			u.RawQuery = pr.In.URL.RawQuery
			keepForwarding(pr.In.Header, pr.Out.Header)
			// The caller's trailers, as the server fills them: Out has a
			// copy of the map taken before the body was read, and net/http
			// sets the values in In's map only at the body's end, so the
			// copy would announce the trailers and send them empty. The
			// transport reads the map after the body's end too.
			if pr.In.Trailer != nil {
				pr.Out.Trailer = pr.In.Trailer
				if !h2c && pr.Out.ContentLength > 0 {
					// An HTTP/2 client may send trailers after a body of
					// known length; HTTP/1.1 carries them only after a
					// chunked one (h2, which may fall back to HTTP/1.1, too).
					pr.Out.ContentLength = -1
				}
			}
			// Host: "" lets the stack send the endpoint's (or the
			// host_header literal); preserve hands it the client's.
			pr.Out.Host = ""
			if preserve {
				pr.Out.Host = pr.In.Host
			}
			dropH2CUpgrade(pr.Out.Header)
		},
		Transport: stack,
		// 0, not -1: ReverseProxy already flushes every write of
		// server-sent events and of responses of unknown length (gRPC,
		// chunked streams); -1 would also cost a timer and a goroutine
		// for every fixed-length response.
		FlushInterval:  0,
		BufferPool:     sharedBufferPool,
		ModifyResponse: modifyResponse,
		ErrorHandler:   s.errorHandler,
		// Copy errors after the response began (an upstream reset mid-body)
		// are the access log's status 499/aborted; details at debug.
		ErrorLog: slog.NewLogLogger(s.opts.logger.Handler(), slog.LevelDebug),
	}
	if e.nativeConn, err = s.newGRPCConn(c, stack); err != nil {
		_ = stack.Close()
		return nil, err
	}
	e.timeout = c.Timeout
	if e.timeout <= 0 {
		e.timeout = ambassador.DefaultTimeout
	}
	return e, nil
}

// acquire takes a reference; false means the entry was retired meanwhile.
func (e *serviceEntry) acquire() bool {
	for {
		v := e.refs.Load()
		if v&retiredBit != 0 {
			return false
		}
		if e.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (e *serviceEntry) release() {
	if e.refs.Add(-1) == retiredBit {
		e.close()
	}
}

// retire marks the entry as no longer routed to; its stack closes once the
// last in-flight request is done.
func (e *serviceEntry) retire() {
	if e.refs.Or(retiredBit)&^retiredBit == 0 {
		e.close()
	}
}

func (e *serviceEntry) inFlight() int64 { return e.refs.Load() &^ retiredBit }

// takeSlot claims one of the service's max_concurrent_requests slots;
// false means they are all taken. A true must be paired with freeSlot.
func (e *serviceEntry) takeSlot() bool {
	if e.maxActive <= 0 {
		return true
	}
	if e.active.Add(1) > e.maxActive {
		e.active.Add(-1)
		return false
	}
	return true
}

func (e *serviceEntry) freeSlot() {
	if e.maxActive > 0 {
		e.active.Add(-1)
	}
}

func (e *serviceEntry) close() {
	e.closeOnce.Do(func() {
		e.closeGRPC()
		if e.nativeConn != nil {
			_ = e.nativeConn.Close()
		}
		if e.tcp != nil {
			if err := e.tcp.close(); err != nil {
				e.logger.Warn("closing service stack", "service", e.name, "error", err)
			}
			return
		}
		if err := e.stack.Close(); err != nil {
			e.logger.Warn("closing service stack", "service", e.name, "error", err)
		}
	})
}
