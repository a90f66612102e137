package proxy

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // callers' gzip-compressed messages: grpc-go's server decompresses them
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
)

// The native gRPC path.
//
// A gRPC request (HTTP/2, content-type application/grpc…) to a service of
// protocol h2c is not proxied by httputil.ReverseProxy: after the usual
// routing, bulkhead and access-log bookkeeping of listenerHandler, it is
// served by grpc-go's server (grpc.Server.ServeHTTP, on net/http's HTTP/2
// server) with one generic handler, forwardGRPC, that opens a stream for
// the same method on the service's grpc.ClientConn. That connection is
// built with the stack's DialOptions, so the service's retry, ratelimit and
// breaker interceptors and its discovery resolver act on the call as they
// would in an application. Messages pass through the pass-through codec
// (rawCodec) undecoded, both ways; metadata, trailers and the final status
// are copied without the ambassador's own x-outbound-error.
//
// Services of protocol h2 (TLS), with a host_header other than endpoint,
// or built over a WithBase transport keep the ReverseProxy path, as do
// gRPC requests over HTTP/1.1.

// retryableDesc is the stream shape forwardGRPC asks for: the retry layer
// retries a server-streaming call until its first response message, keeping
// the messages sent meanwhile for the next attempt. The shape on the wire
// is fullDuplex (passDesc, below the policies): the ambassador does not know
// whether the method streams, and the caller may send any number of messages.
var retryableDesc = grpc.StreamDesc{ServerStreams: true}

var fullDuplex = grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// passDesc is the innermost stream interceptor of the native path's
// connections: it puts the real (full duplex) shape back under the policies.
func passDesc(ctx context.Context, _ *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(ctx, &fullDuplex, cc, method, opts...)
}

// newGRPCConn returns the native path's connection to the service of e, or
// nil when the service keeps the ReverseProxy path (see above).
func (s *Server) newGRPCConn(c ambassador.ServiceConfig, stack *ambassador.Stack) (*grpc.ClientConn, error) {
	if c.Protocol != ambassador.ProtocolH2C || (c.HostHeader != "" && c.HostHeader != ambassador.HostEndpoint) {
		return nil, nil
	}
	dopts, err := stack.DialOptions()
	if err != nil {
		return nil, nil // a WithBase stack: the ReverseProxy path uses that base
	}
	inner := []grpc.StreamClientInterceptor{passDesc, sendLogInterceptor}
	if s.opts.tracer != nil {
		at := &attemptTracer{tracer: s.opts.tracer, service: attribute.String("service", c.Name)}
		inner = []grpc.StreamClientInterceptor{at.intercept, passDesc, sendLogInterceptor}
	}
	dopts = append(dopts,
		grpc.WithChainStreamInterceptor(inner...),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(rawCodec{}),
			grpc.MaxCallRecvMsgSize(math.MaxInt32),
			grpc.MaxCallSendMsgSize(math.MaxInt32),
		),
	)
	return grpc.NewClient("outbound:///"+c.Name, dopts...)
}

// newGRPCServer is the server of the native path, shared by every listener.
func (s *Server) newGRPCServer() *grpc.Server {
	return grpc.NewServer(
		grpc.UnknownServiceHandler(s.forwardGRPC),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.MaxSendMsgSize(math.MaxInt32),
	)
}

// nativeCall is what forwardGRPC needs from listenerHandler, carried in the
// request's context through grpc.Server.ServeHTTP.
//
// grpc-go's ServeHTTP returns once the call's status is written or its
// request is over (the caller went away), which may be before the handler
// returns: the handler touches lw only while it runs, and serveNativeGRPC
// waits for a running handler, so lw (pooled) is never written after the
// access log read it.
type nativeCall struct {
	entry *serviceEntry
	lw    *logWriter

	mu      sync.Mutex
	state   int           // callNew, callRunning or callAbandoned
	handled chan struct{} // closed when a running handler returns
}

const (
	callNew = iota
	callRunning
	callAbandoned
)

// start marks the handler as running; false: ServeHTTP has already
// returned and the call is not served.
func (nc *nativeCall) start() bool {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.state == callAbandoned {
		return false
	}
	nc.state = callRunning
	return true
}

// wait waits for a running handler, or marks the call abandoned.
func (nc *nativeCall) wait() {
	nc.mu.Lock()
	running := nc.state == callRunning
	nc.state = callAbandoned
	nc.mu.Unlock()
	if running {
		<-nc.handled
	}
}

type nativeCallKey struct{}

// nativeGRPC reports whether r goes the native path of entry.
func nativeGRPC(r *http.Request, entry *serviceEntry) bool {
	return entry.nativeConn != nil && r.ProtoMajor == 2 && isGRPC(r)
}

// serveNativeGRPC serves r, a gRPC request for entry, on the native path.
func (s *Server) serveNativeGRPC(lw *logWriter, r *http.Request, entry *serviceEntry) {
	nc := &nativeCall{entry: entry, lw: lw, handled: make(chan struct{})}
	ctx := context.WithValue(r.Context(), nativeCallKey{}, nc)
	s.grpcSrv.ServeHTTP(flushWriter{lw}, r.WithContext(ctx))
	nc.wait()
}

// flushWriter gives grpc-go's handler transport the http.Flusher it needs
// while writes still go through the logWriter (bytes out, status).
type flushWriter struct{ *logWriter }

func (w flushWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// forwardGRPC is the grpc.Server's handler of every method: it forwards
// the call to the service's connection and copies messages both ways.
func (s *Server) forwardGRPC(_ any, ss grpc.ServerStream) error {
	ctx := ss.Context()
	nc, _ := ctx.Value(nativeCallKey{}).(*nativeCall)
	method, ok := grpc.MethodFromServerStream(ss)
	if nc == nil || !ok {
		return status.Error(codes.Internal, "outbound: not a routed call")
	}
	if !nc.start() {
		return status.Error(codes.Canceled, "outbound: the call ended before it was served")
	}
	defer close(nc.handled)
	log := newSendLog()
	if nc.entry.cfg.Retry == nil {
		log.commit() // no retry layer: one attempt, nothing kept for a replay
	}
	octx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, s.forwardMD(ctx)), nc.entry.timeout)
	defer cancel()
	octx = context.WithValue(octx, sendLogKey{}, log)
	cs, err := nc.entry.nativeConn.NewStream(octx, &retryableDesc, method)
	if err != nil {
		return s.grpcFailure(ctx, ss, nc, err)
	}
	go pumpToLog(ss, log, cancel)
	var f rawFrame
	for first := true; ; first = false {
		err := cs.RecvMsg(&f)
		if first {
			log.commit() // the retry layer starts no further attempt
			// The upstream's headers, also when no message follows; a
			// trailers-only answer has none (Header fails).
			if h, herr := cs.Header(); herr == nil && len(h) > 0 {
				if err := ss.SendHeader(cleanMD(h)); err != nil {
					return err
				}
			}
		}
		if err != nil {
			ss.SetTrailer(cleanMD(cs.Trailer()))
			if errors.Is(err, io.EOF) {
				return nil
			}
			return s.grpcFailure(ctx, ss, nc, err)
		}
		if err := ss.SendMsg(&f); err != nil {
			return err // the caller went away
		}
	}
}

// pumpToLog puts the caller's messages into log until the caller
// half-closes (then it closes the log) or fails (then it cancels the
// upstream call). The sender of each attempt (sendLogInterceptor) writes
// them upstream.
func pumpToLog(ss grpc.ServerStream, log *sendLog, cancel context.CancelFunc) {
	for {
		f := new(rawFrame) // not reused: the log keeps it until the call commits
		if err := ss.RecvMsg(f); err != nil {
			if errors.Is(err, io.EOF) {
				log.closeSend()
				return
			}
			cancel()
			return
		}
		log.add(f)
	}
}

// grpcFailure ends a call whose stream failed: a refusal of the stack (or
// the call's deadline) is answered as the ambassador's own, with the reason
// in x-outbound-error; anything else is the upstream's status, passed on.
func (s *Server) grpcFailure(ctx context.Context, ss grpc.ServerStream, nc *nativeCall, err error) error {
	code, reason, retryAfter := classify(err)
	if !isRefusal(reason) {
		if !deadlinePassed(ctx) {
			if ctx.Err() != nil {
				nc.lw.quiet = true
			}
			return status.Convert(err).Err()
		}
		code, reason = http.StatusGatewayTimeout, ReasonUpstreamTimeout
	}
	nc.lw.reason = reason
	md := metadata.MD{"x-outbound-error": {reason}}
	if retryAfter > 0 {
		md["grpc-retry-pushback-ms"] = []string{strconv.FormatInt(retryAfter.Milliseconds(), 10)}
	}
	ss.SetTrailer(md)
	return status.Error(grpcCodeOf(code), "outbound: "+reason)
}

// isRefusal reports whether reason is one the stack decided locally,
// without an answer from the upstream.
func isRefusal(reason string) bool {
	switch reason {
	case ReasonRateLimited, ReasonCircuitOpen, ReasonNoEndpoints, ReasonRetryBudgetExhausted, ReasonOverloaded:
		return true
	}
	return false
}

// grpcCodeOf is the gRPC code of a local answer of HTTP status code (see
// refuse).
func grpcCodeOf(code int) codes.Code {
	switch code {
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusMethodNotAllowed, http.StatusBadRequest:
		return codes.Internal
	}
	return codes.Unavailable
}

// forwardMD is the caller's metadata as the upstream gets it: without the
// HTTP/2 and gRPC framing headers grpc-go sets itself, and without the
// caller's trace context when tracing is on (each attempt sends its own).
func (s *Server) forwardMD(ctx context.Context) metadata.MD {
	in, _ := metadata.FromIncomingContext(ctx)
	out := make(metadata.MD, len(in))
	for k, v := range in {
		if !hopMD(k) {
			out[k] = v
		}
	}
	if s.opts.tracer != nil {
		// attemptTracer sends each attempt's own trace context.
		delete(out, "traceparent")
		delete(out, "tracestate")
	}
	return out
}

// hopMD reports whether metadata key k belongs to one hop only.
func hopMD(k string) bool {
	if strings.HasPrefix(k, ":") {
		return true
	}
	switch k {
	case "content-type", "user-agent", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host":
		return true
	}
	return false
}

// cleanMD is upstream metadata as the caller gets it: without an
// x-outbound-error of the upstream's (only the ambassador sets it).
func cleanMD(md metadata.MD) metadata.MD {
	if _, ok := md["x-outbound-error"]; !ok {
		return md
	}
	md = md.Copy()
	delete(md, "x-outbound-error")
	return md
}

// mdCarrier lets the OTel propagator write into gRPC metadata.
type mdCarrier metadata.MD

func (c mdCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }

func (c mdCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}
