package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/outbound-go/outbound/internal/mdcarrier"
)

// DefaultMaxBody bounds a request body when Handler.MaxBody is 0.
const DefaultMaxBody = 4 << 20

// Local answers what the ambassador refuses itself, with its own reasons
// (X-Outbound-Error), as the proxy answers its other requests.
type Local interface {
	// Refuse answers code with reason; detail, when not "", says more.
	Refuse(w http.ResponseWriter, r *http.Request, code int, reason, detail string)
	// Failed answers err and returns true when err is not the upstream's
	// answer but a local refusal (rate limited, circuit open, no
	// endpoints, retry budget, the call's own deadline, the client gone);
	// it returns false, writing nothing, for an upstream's status.
	Failed(w http.ResponseWriter, r *http.Request, err error) bool
}

// Handler transcodes JSON over HTTP into gRPC calls on Conn. Its fields are
// set once, before the first Serve; Serve is safe for concurrent use.
type Handler struct {
	// Conn carries the calls; the service's policies are its interceptors.
	Conn grpc.ClientConnInterface
	// Source gives the methods and message types.
	Source Source
	// Timeout bounds each request, the descriptor fetch and the call,
	// retries included; 0: the request's context only.
	Timeout time.Duration
	// MaxBody bounds the request body (413 beyond); 0 means DefaultMaxBody.
	MaxBody int64
	// Local answers the ambassador's own refusals.
	Local Local
	// Propagator, when set, writes the request context's trace context
	// (the ambassador's server span) into the call metadata; nil passes
	// the caller's traceparent and tracestate on as they came.
	Propagator propagation.TextMapPropagator
}

// call is one transcoded request on its way.
type call struct {
	h   *Handler
	d   *Descriptors
	md  protoreflect.MethodDescriptor
	res resolver
}

// Serve answers r, returning the gRPC method it called ("/pkg.Service/
// Method"), or "" when r matched none (answered 404 no_route).
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) string {
	ctx := r.Context()
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
		r = r.WithContext(ctx) // Local sees the call's deadline
	}
	d, err := h.Source.Descriptors(ctx)
	if err != nil {
		h.fail(w, r, err, resolver{})
		return ""
	}
	c := call{h: h, d: d, res: resolver{d.types}}
	rule, ok := c.match(r)
	if !ok {
		h.Local.Refuse(w, r, http.StatusNotFound, "no_route", "no method "+r.Method+" "+r.URL.Path)
		return ""
	}
	c.md = rule.Method
	method := "/" + string(c.md.Parent().FullName()) + "/" + string(c.md.Name())
	if c.md.IsStreamingClient() {
		st := status.New(codes.Unimplemented, fmt.Sprintf(
			"outbound: %s is a client- or bidi-streaming method; JSON transcoding calls unary and server-streaming methods only", method))
		writeStatus(w, st, c.res)
		return method
	}
	req, ok := c.request(w, r, rule)
	if !ok {
		return method
	}
	md, err := requestMetadata(r.Header)
	if err != nil {
		h.Local.Refuse(w, r, http.StatusBadRequest, "bad_request", err.Error())
		return method
	}
	if h.Propagator != nil {
		h.Propagator.Inject(ctx, mdcarrier.Carrier(md))
	}
	ctx = metadata.NewOutgoingContext(ctx, md)
	if c.md.IsStreamingServer() {
		c.stream(ctx, w, r, method, req)
	} else {
		c.unary(ctx, w, r, method, req, rule.ResponseBody)
	}
	return method
}

// match finds the method of r: the gRPC path with POST, then the
// google.api.http rules.
func (c *call) match(r *http.Request) (RuleMatch, bool) {
	if r.Method == http.MethodPost {
		if md, ok := c.d.Method(r.URL.Path); ok {
			return RuleMatch{Method: md, Body: "*"}, true
		}
	}
	if c.d.rules != nil {
		return c.d.rules.Match(r.Method, r.URL.EscapedPath())
	}
	return RuleMatch{}, false
}

// request reads and decodes the request message; on false it has answered.
func (c *call) request(w http.ResponseWriter, r *http.Request, rule RuleMatch) (*dynamicpb.Message, bool) {
	req := dynamicpb.NewMessage(c.md.Input())
	bad := func(detail string) (*dynamicpb.Message, bool) {
		c.h.Local.Refuse(w, r, http.StatusBadRequest, "bad_request", detail)
		return nil, false
	}
	if rule.Body != "" {
		body, ok := c.readBody(w, r)
		if !ok {
			return nil, false
		}
		target := protoreflect.Message(req)
		if rule.Body != "*" && rule.BodyTarget != nil {
			t, err := rule.BodyTarget(req)
			if err != nil {
				return bad(err.Error())
			}
			target = t
		}
		if len(body) > 0 {
			if err := (protojson.UnmarshalOptions{Resolver: c.res}).Unmarshal(body, target.Interface()); err != nil {
				return bad("request body: " + err.Error())
			}
		}
	}
	if rule.Bind != nil {
		if err := rule.Bind(req, r.URL.Query()); err != nil {
			return bad(err.Error())
		}
	}
	return req, true
}

// readBody reads the whole request body, at most MaxBody bytes; on false
// it has answered (413, or 400 for a body that broke off).
func (c *call) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil {
		return nil, true
	}
	limit := c.h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		if !c.h.Local.Failed(w, r, err) {
			c.h.Local.Refuse(w, r, http.StatusBadRequest, "bad_request", "reading the request body: "+err.Error())
		}
		return nil, false
	case int64(len(body)) > limit:
		c.h.Local.Refuse(w, r, http.StatusRequestEntityTooLarge, "bad_request", fmt.Sprintf("request body over %d bytes", limit))
		return nil, false
	}
	return body, true
}

// fail answers err: a local refusal as Local says, else the gRPC status as
// its HTTP status and JSON body.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, res resolver) {
	if h.Local.Failed(w, r, err) {
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		code := codes.Unavailable
		if errors.Is(err, ErrBadDescriptors) {
			code = codes.Internal
		}
		st = status.New(code, err.Error())
	}
	writeStatus(w, st, res)
}
