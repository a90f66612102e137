package proxy

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // callers' gzip-compressed messages: grpc-go's server decompresses them
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/internal/attempt"
	kinds "github.com/outbound-go/outbound/internal/classify"
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
// is fullDuplex (sendLogInterceptor, below the policies, puts it back): the
// ambassador does not know whether the method streams, and the caller may
// send any number of messages.
var retryableDesc = grpc.StreamDesc{ServerStreams: true}

var fullDuplex = grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// newGRPCConn returns the native path's connection to the service of e, or
// nil when the service keeps the ReverseProxy path (see above).
func (s *Server) newGRPCConn(c ambassador.ServiceConfig, stack *ambassador.Stack) (*grpc.ClientConn, error) {
	if c.Protocol != ambassador.ProtocolH2C || (c.HostHeader != "" && c.HostHeader != ambassador.HostEndpoint) {
		return nil, nil
	}
	if _, err := stack.DialOptions(); err != nil {
		return nil, nil // a WithBase stack: the ReverseProxy path uses that base
	}
	var chain []grpc.StreamClientInterceptor
	if p := stack.Retry(); p != nil {
		chain = append(chain, p.StreamClientInterceptor())
	}
	if l := stack.Limiter(); l != nil {
		chain = append(chain, l.StreamClientInterceptor())
	}
	if s.opts.tracer != nil {
		at := &attemptTracer{tracer: s.opts.tracer, service: attribute.String("service", c.Name)}
		chain = append(chain, at.intercept)
	}
	chain = append(chain, sendLogInterceptor)
	dopts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainStreamInterceptor(chain...),
		grpc.WithMaxHeaderListSize(ambassador.MaxResponseHeaderBytes), // as the stack's own DialOptions
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(rawCodec{}),
			grpc.MaxCallRecvMsgSize(math.MaxInt32),
			grpc.MaxCallSendMsgSize(math.MaxInt32),
		),
	}, discoveryOptions(stack)...)
	return grpc.NewClient("outbound:///"+c.Name, dopts...)
}

// nativeCall is the state of one native call that lives as long as the
// call, in one allocation: the access log's writer and body count, the
// request's URL, the attempt record, the send log, and the first message
// each way (a unary call has no other).
type nativeCall struct {
	lw       logWriter
	in       countingBody
	url      url.URL
	rec      attempt.Record
	log      sendLog
	up, down rawFrame // the first message to the upstream, and to the caller
}

// forwardGRPC forwards the call of ss, routed to entry, on the service's
// connection and copies messages both ways; c.lw records the outcome for
// the access log. ctx is the stream's context with the call's attempt
// record (and server span); md is the caller's metadata, the call's own
// copy, which forwardGRPC trims to what the upstream gets.
func (s *Server) forwardGRPC(ctx context.Context, ss grpc.ServerStream, entry *serviceEntry, c *nativeCall, method string, md metadata.MD) error {
	lw, log := &c.lw, &c.log
	log.init()
	if entry.cfg.Retry == nil {
		log.commit() // no retry layer: one attempt, nothing kept for a replay
	}
	if md = s.forwardMD(md); len(md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	octx, cancel := kinds.WithOwnTimeout(ctx, entry.timeout) // a call it cuts is the endpoint's failure
	defer cancel()
	octx = context.WithValue(octx, sendLogKey{}, log)
	cs, err := entry.nativeConn.NewStream(octx, &retryableDesc, method)
	if err != nil {
		return s.grpcFailure(ctx, ss, lw, err)
	}
	log.startPump()
	go pumpToLog(ss, log, cancel, lw, &c.up)
	f := &c.down
	for first := true; ; first = false {
		err := cs.RecvMsg(f)
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
			return s.grpcFailure(ctx, ss, lw, err)
		}
		if err := ss.SendMsg(f); err != nil {
			return err // the caller went away
		}
		lw.out += int64(len(f.b))
		f = new(rawFrame) // f is the transport's until it is written (see rawFrame)
	}
}

// pumpToLog puts the caller's messages into log, and writes them to the
// attempt the log gives it (the first, until it fails), until the caller
// half-closes (then it closes the log and that attempt's sending side) or
// fails (then it cancels the upstream call). The sender of each later
// attempt (sendLogInterceptor) writes the log upstream. f receives the
// first message.
func pumpToLog(ss grpc.ServerStream, log *sendLog, cancel context.CancelFunc, lw *logWriter, f *rawFrame) {
	// Each message has a frame of its own: the log keeps it until the call
	// commits, and the transport until it is written (see rawFrame).
	for ; ; f = new(rawFrame) {
		if err := ss.RecvMsg(f); err != nil {
			if errors.Is(err, io.EOF) {
				if cs := log.closeSend(); cs != nil {
					_ = cs.CloseSend()
				}
				return
			}
			cancel()
			return
		}
		lw.in.n.Add(int64(len(f.b))) // lw.in is set by serveGRPCCall
		if cs := log.add(f); cs != nil && cs.SendMsg(f) != nil {
			log.detach(cs) // the attempt failed; its RecvMsg says how
		}
	}
}

// grpcFailure ends a call whose stream failed: a refusal of the stack (or
// the call's deadline) is answered as the ambassador's own, with the reason
// in x-outbound-error; anything else is the upstream's status, passed on.
func (s *Server) grpcFailure(ctx context.Context, ss grpc.ServerStream, lw *logWriter, err error) error {
	code, reason, retryAfter := classify(err)
	if !isRefusal(reason) {
		if !deadlinePassed(ctx) {
			if ctx.Err() != nil {
				lw.quiet = true
			}
			return status.Convert(err).Err()
		}
		code, reason = http.StatusGatewayTimeout, ReasonUpstreamTimeout
	}
	lw.reason = reason
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

// forwardMD trims md, the caller's metadata (the call's own copy), to what
// the upstream gets, and returns it: without the HTTP/2 and gRPC framing
// headers grpc-go sets itself, and without the caller's trace context when
// tracing is on (each attempt sends its own).
func (s *Server) forwardMD(md metadata.MD) metadata.MD {
	for k := range md {
		if hopMD(k) {
			delete(md, k)
		}
	}
	if s.opts.tracer != nil {
		// attemptTracer sends each attempt's own trace context.
		delete(md, "traceparent")
		delete(md, "tracestate")
	}
	return md
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
// x-outbound-error of the upstream's (only the ambassador sets it). md is
// the call's own (grpc-go's ClientStream.Header and Trailer return copies),
// so it is trimmed in place.
func cleanMD(md metadata.MD) metadata.MD {
	delete(md, "x-outbound-error")
	return md
}
