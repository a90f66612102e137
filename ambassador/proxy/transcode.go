package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy/internal/transcode"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/httprule"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// httpRules builds the google.api.http rules of transcoded services with
// internal/httprule.
func httpRules(sds []protoreflect.ServiceDescriptor) (transcode.Rules, error) {
	r, err := httprule.NewRouter(sds)
	if err != nil {
		return nil, err
	}
	return httpRouter{r}, nil
}

// httpRouter is an httprule.Router as transcode.Rules.
type httpRouter struct{ r *httprule.Router }

func (h httpRouter) Match(verb, path string) (transcode.RuleMatch, bool) {
	m, ok := h.r.Match(verb, path)
	if !ok {
		return transcode.RuleMatch{}, false
	}
	return transcode.RuleMatch{Method: m.Method, Body: m.Body, ResponseBody: m.ResponseBody,
		Bind: m.Bind, BodyTarget: m.BodyTarget}, true
}

// grpcConn is a service entry's grpc.ClientConn for transcoding, dialed on
// first use with the options of the entry's own stack, so a transcoded
// call shares the breakers, limiter, retry budget and endpoints of the
// service's other requests. The entry closes it when it closes (a reload
// that changed or removed the service, shutdown).
type grpcConn struct {
	once sync.Once
	cc   *grpc.ClientConn
	err  error
}

func (e *serviceEntry) grpcClient() (*grpc.ClientConn, error) {
	g := &e.grpc
	g.once.Do(func() {
		opts, err := e.stack.DialOptions()
		if err != nil {
			g.err = err
			return
		}
		g.cc, g.err = grpc.NewClient("outbound:///"+e.name, opts...)
	})
	return g.cc, g.err
}

func (e *serviceEntry) closeGRPC() {
	g := &e.grpc
	g.once.Do(func() {}) // none from now on
	if g.cc != nil {
		if err := g.cc.Close(); err != nil {
			e.logger.Warn("closing transcoding connection", "service", e.name, "error", err)
		}
	}
}

// lazyConn dials the entry's ClientConn on the first call, so a transcode
// listener whose service is never called dials nothing.
type lazyConn struct{ e *serviceEntry }

func (c lazyConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	cc, err := c.e.grpcClient()
	if err != nil {
		return err
	}
	return cc.Invoke(ctx, method, args, reply, opts...)
}

func (c lazyConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cc, err := c.e.grpcClient()
	if err != nil {
		return nil, err
	}
	return cc.NewStream(ctx, desc, method, opts...)
}

// ownRecordConn gives each stream its own attempt record: the reflection
// fetch runs in the context of the request that needed it, whose record
// (its endpoints tried, its attempts in the access log) belongs to its call.
type ownRecordConn struct{ lazyConn }

func (c ownRecordConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	rctx, _ := attempt.WithNewRecord(ctx)
	return c.lazyConn.NewStream(rctx, desc, method, opts...)
}

// transcoders builds the transcode handlers of one routing table: one
// reflection source per service, so the table fetches each service's
// descriptors once, and a new table (a reload) fetches them anew.
type transcoders struct {
	s          *Server
	reflection map[string]*transcode.Reflection
}

func (s *Server) newTranscoders() *transcoders {
	return &transcoders{s: s, reflection: map[string]*transcode.Reflection{}}
}

// attach sets the transcode handler of lr's routes from l.
func (tc *transcoders) attach(lr *listenerRoutes, l ListenerConfig) error {
	if l.Transcode != nil && lr.service != nil {
		h, err := tc.handler(l.Transcode, lr.service)
		if err != nil {
			return fmt.Errorf("ambassador: listener %s: transcode: %w", l.Address, err)
		}
		lr.whole.transcode = h
	}
	for i, rc := range l.Routes {
		if rc.Transcode == nil || lr.routes[i].target == nil {
			continue
		}
		h, err := tc.handler(rc.Transcode, lr.routes[i].target)
		if err != nil {
			return fmt.Errorf("ambassador: listener %s: routes[%d].transcode: %w", l.Address, i, err)
		}
		lr.routes[i].transcode = h
	}
	return nil
}

func (tc *transcoders) handler(c *TranscodeConfig, e *serviceEntry) (*transcode.Handler, error) {
	h := &transcode.Handler{Conn: lazyConn{e}, Timeout: serviceTimeout(e.cfg), Local: transcodeLocal{tc.s}}
	if tc.s.opts.tracer != nil {
		// The upstream's parent is the server span, as on the HTTP path.
		h.Propagator = otel.GetTextMapPropagator()
	}
	if c.DescriptorSet != "" {
		d, err := loadDescriptorSet(c.DescriptorSet)
		if err != nil {
			return nil, err
		}
		h.Source = transcode.Static{D: d}
		return h, nil
	}
	src := tc.reflection[e.name]
	if src == nil {
		src = transcode.NewReflection(ownRecordConn{lazyConn{e}}, h.Timeout, httpRules)
		tc.reflection[e.name] = src
	}
	h.Source = src
	return h, nil
}

// serveTranscode answers a JSON request of a transcode route and returns
// the route to record it under: the gRPC method, when one was called.
func (s *Server) serveTranscode(w http.ResponseWriter, r *http.Request, rt *route, e *serviceEntry) *route {
	method := rt.transcode.Serve(w, r)
	if method == "" {
		return rt
	}
	return &route{name: method, target: e}
}

// transcodeLocal answers the transcoder's local refusals as the proxy
// answers its own.
type transcodeLocal struct{ s *Server }

func (l transcodeLocal) Refuse(w http.ResponseWriter, r *http.Request, code int, reason, detail string) {
	if lw, ok := w.(*logWriter); ok {
		lw.reason = reason
	}
	h := w.Header()
	h[HeaderError] = []string{reason}
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	msg := "outbound: " + reason
	if detail != "" {
		msg += ": " + detail
	}
	_, _ = w.Write([]byte(msg + "\n"))
}

func (l transcodeLocal) Failed(w http.ResponseWriter, r *http.Request, err error) bool {
	ctxErr := r.Context().Err()
	var le *ratelimit.LimitedError
	switch {
	case errors.Is(ctxErr, context.Canceled):
		// The client went away: nobody to answer.
		if lw, ok := w.(*logWriter); ok {
			lw.quiet = true
			lw.status = 499
		}
		return true
	case errors.As(err, &le), errors.Is(err, ratelimit.ErrLimited), errors.Is(err, breaker.ErrOpen),
		errors.Is(err, discovery.ErrNoEndpoints), errors.Is(err, retry.ErrBudgetExhausted):
		code, reason, ra := classify(err)
		l.s.refuse(w, r, code, reason, ra)
		return true
	case deadlinePassed(r.Context()):
		// The service's timeout ended the call. The upstream learnt the
		// same deadline from grpc-timeout and may answer DEADLINE_EXCEEDED
		// before this side's timer fires: that answer is still ours.
		l.s.refuse(w, r, http.StatusGatewayTimeout, ReasonUpstreamTimeout, 0)
		return true
	}
	return false
}

// serviceTimeout is the service's timeout or its default.
func serviceTimeout(c ambassador.ServiceConfig) time.Duration {
	if c.Timeout <= 0 {
		return ambassador.DefaultTimeout
	}
	return c.Timeout
}
