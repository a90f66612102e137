package proxy

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
)

// streamWorkers is the number of goroutines per listener that serve
// native calls (grpc.NumStreamWorkers); a call finding them all busy gets
// a goroutine of its own.
const streamWorkers = 64

// nativeListener is the gRPC side of one HTTP listener: the sniffing
// router in front of its net/http server and the grpc.Server that serves
// the connections whose first request is gRPC.
type nativeListener struct {
	router *connRouter
	srv    *grpc.Server
	done   chan struct{} // closed when srv.Serve has returned
	served chan struct{} // closed when the accept loop has returned
}

// newNativeListener puts a connRouter on ln, listener idx's (counted by
// the connection limit); the listener's http.Server serves
// router.httpLn.
func (s *Server) newNativeListener(idx int, ln net.Listener, lim LimitsConfig) *nativeListener {
	h := &listenerHandler{s: s, idx: idx}
	nl := &nativeListener{done: make(chan struct{}), served: make(chan struct{})}
	nl.srv = grpc.NewServer(
		grpc.UnknownServiceHandler(h.serveGRPCCall),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxHeaderListSize(uint32(lim.MaxHeaderBytes)),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: lim.IdleTimeoutOrDefault()}),
		// Calls run on long-lived workers, not a new goroutine each: a
		// forwarded call's stack (the policies' interceptors, then grpc-go's
		// client stream) is deep, and growing a fresh 8 KiB stack to it,
		// copy by copy, took 18% of the process's CPU at 32 calls in flight.
		grpc.NumStreamWorkers(streamWorkers),
	)
	nl.router = newConnRouter(ln, func() bool { return s.table.Load().listeners[idx].allNative() }, lim.ReadHeaderTimeout, int(lim.MaxHeaderBytes))
	return nl
}

// start runs the accept loop and the grpc.Server until the router's
// listener closes and stop has been called.
func (nl *nativeListener) start() {
	go func() {
		defer close(nl.served)
		nl.router.serve()
	}()
	go func() {
		defer close(nl.done)
		_ = nl.srv.Serve(nl.router.grpcLn)
	}()
}

// newNativeListeners makes the nativeListener of every HTTP listener in
// lns (nil for tcp listeners and the admin listener, last).
func (s *Server) newNativeListeners(lns []net.Listener, tcps []*tcpListener, lim LimitsConfig) []*nativeListener {
	out := make([]*nativeListener, len(lns))
	for i := range s.addrs {
		if tcps[i] == nil {
			out[i] = s.newNativeListener(i, lns[i], lim)
		}
	}
	return out
}

// stopNative starts draining the gRPC side of every listener for up to
// timeout (see stop); the function it returns waits until they are done,
// and also for the accept loops, which end once the http.Servers, which
// own the listeners, have closed them.
func stopNative(nls []*nativeListener, timeout time.Duration) (wait func()) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	var wg sync.WaitGroup
	for _, nl := range nls {
		if nl == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nl.stop(ctx)
		}()
	}
	return func() {
		wg.Wait()
		cancel()
		for _, nl := range nls {
			if nl != nil {
				<-nl.served
			}
		}
	}
}

// stop ends the gRPC side: GracefulStop (GOAWAY, calls in flight finish)
// until ctx is done, then Stop (what is left is cut).
func (nl *nativeListener) stop(ctx context.Context) {
	graceful := make(chan struct{})
	go func() {
		defer close(graceful)
		nl.srv.GracefulStop()
	}()
	select {
	case <-graceful:
	case <-ctx.Done():
		nl.srv.Stop()
		<-graceful
	}
	_ = nl.router.grpcLn.Close() // Serve may not have started yet
	<-nl.done
}

// allNative reports whether every gRPC call the listener can route could
// take the native path: every service it routes to has a native
// connection. Only then does its sniffer hand gRPC-first connections to
// grpc-go.
func (l *listenerRoutes) allNative() bool {
	if l.service != nil {
		return l.service.nativeConn != nil
	}
	for i := range l.routes {
		rt := &l.routes[i]
		if rt.target != nil && rt.target.nativeConn == nil {
			return false
		}
		for _, sp := range rt.split {
			if sp.entry.nativeConn == nil {
				return false
			}
		}
	}
	return true
}

// serveGRPCCall is the handler of every call on a connection grpc-go's
// transport serves: routing, the bulkhead, the server span, the access log
// line and the request metric as listenerHandler.ServeHTTP does them, on
// a request made from the call's headers, then forwardGRPC.
func (h *listenerHandler) serveGRPCCall(_ any, ss grpc.ServerStream) (err error) {
	s := h.s
	start := time.Now()
	method, _ := grpc.MethodFromServerStream(ss)
	md, _ := metadata.FromIncomingContext(ss.Context()) // a copy: the call's own from here on
	c := &nativeCall{}
	c.lw = logWriter{ResponseWriter: headerWriter{h: http.Header{}}, in: &c.in}
	lw := &c.lw
	r := callRequest(ss.Context(), method, md, &c.url)
	var (
		rt    *route
		entry *serviceEntry
		rec   *attempt.Record
		slot  bool
	)
	defer func() {
		lw.Header()["Grpc-Status"] = grpcStatusValue(status.Code(err))
		if slot {
			entry.freeSlot()
		}
		s.reqMetrics.record(r, lw.status, false, rt, entry, start)
		s.accessLog(r, lw, rt, entry, rec, start, nil)
		if entry != nil {
			entry.release()
		}
	}()
	if s.opts.tracer != nil {
		sr, span := s.startServerSpan(r)
		r = sr
		defer func() { endServerSpan(span, lw.status, rt, entry) }()
	}
	if rt, entry = h.route(lw, r); entry == nil {
		return refusalStatus(ss, lw)
	}
	if entry.nativeConn == nil {
		// A reload sent this route to a service the native path cannot
		// serve; the connection stays grpc-go's.
		s.refuse(lw, r, http.StatusServiceUnavailable, ReasonNoEndpoints, 0)
		return refusalStatus(ss, lw)
	}
	if !entry.takeSlot() {
		s.refuse(lw, r, http.StatusServiceUnavailable, ReasonOverloaded, 0)
		return refusalStatus(ss, lw)
	}
	slot = true
	rec = &c.rec
	return s.forwardGRPC(attempt.WithRecord(r.Context(), rec), ss, entry, c, method, md)
}

// grpcStatusValues are the header values of the codes grpc-go defines, made
// once: shared, so never appended to or written (len = cap).
var grpcStatusValues = func() (v [codes.Unauthenticated + 1][]string) {
	for c := range v {
		v[c] = []string{strconv.Itoa(c)}
	}
	return v
}()

// grpcStatusValue is the Grpc-Status header value of code.
func grpcStatusValue(code codes.Code) []string {
	if int(code) < len(grpcStatusValues) {
		return grpcStatusValues[code]
	}
	return []string{strconv.FormatUint(uint64(code), 10)}
}

// callRequest is the request a gRPC call on grpc-go's transport would have
// been on net/http's: what routing, the access log, the metrics and the
// server span read (method, path, host, remote address, content-type and
// trace context), from md, the call's metadata. Its context is the
// stream's; u, the call's, becomes its URL.
func callRequest(ctx context.Context, method string, md metadata.MD, u *url.URL) *http.Request {
	u.Path = method
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     make(http.Header, 3),
	}
	if v := md[":authority"]; len(v) > 0 {
		r.Host = v[0]
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.RemoteAddr = p.Addr.String()
	}
	for _, k := range [...]struct{ md, h string }{{"content-type", "Content-Type"}, {"traceparent", "Traceparent"}, {"tracestate", "Tracestate"}} {
		if v := md[k.md]; len(v) > 0 {
			r.Header[k.h] = v
		}
	}
	return r.WithContext(ctx)
}

// headerWriter is the http.ResponseWriter refuse answers into on the
// native path: only its header is read (refusalStatus turns it into the
// gRPC status).
type headerWriter struct{ h http.Header }

func (w headerWriter) Header() http.Header       { return w.h }
func (headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (headerWriter) WriteHeader(int)             {}

// refusalStatus is the gRPC status of the trailers-only answer refuse
// wrote into lw's header, with its x-outbound-error (and
// grpc-retry-pushback-ms) as trailers.
func refusalStatus(ss grpc.ServerStream, lw *logWriter) error {
	h := lw.Header()
	md := metadata.MD{}
	if v := h[HeaderError]; len(v) > 0 {
		md["x-outbound-error"] = v
	}
	if v := h["Grpc-Retry-Pushback-Ms"]; len(v) > 0 {
		md["grpc-retry-pushback-ms"] = v
	}
	ss.SetTrailer(md)
	code := codes.Unavailable
	if v := h["Grpc-Status"]; len(v) > 0 {
		if n, err := strconv.Atoi(v[0]); err == nil {
			code = codes.Code(n)
		}
	}
	msg := ""
	if v := h["Grpc-Message"]; len(v) > 0 {
		msg = v[0]
	}
	return status.Error(code, msg)
}
