package ambassador

import (
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
)

// clientTelemetry is the instrumentation under a stack given explicit
// providers: one http.client.request.duration measurement per attempt (the
// stable HTTP client semantic conventions: method, server address and port,
// scheme, protocol, status code or error type), a client span per attempt
// when the span is recorded, and the trace context injected into the
// upstream request with the global propagator.
//
// It measures what otelhttp's Transport measured here, at a fraction of the
// cost on the proxy hop: the instrument is created once, the attribute set of
// each (endpoint, method, status) is built once and reused, and a span that
// is not recorded costs no attributes, no request copy and no body wrapper.
type clientTelemetry struct {
	next     http.RoundTripper
	duration httpconv.ClientRequestDuration
	tracer   trace.Tracer // from the explicit provider; nil: the context's or the global one
	global   trace.Tracer // the global provider's, created once (it follows SetTracerProvider)
	prop     propagation.TextMapPropagator

	mu   sync.Mutex // serializes writers of sets
	sets atomic.Pointer[map[attrKey][]metric.RecordOption]
}

// attrKey identifies one attribute set of the duration histogram.
type attrKey struct {
	method, host, scheme, proto, errType string
	port, status                         int
}

// maxAttrSets bounds the cached attribute sets (endpoints × methods ×
// statuses); beyond it sets are built per measurement.
const maxAttrSets = 1024

const instrumentationName = "github.com/outbound-go/outbound/ambassador"

// Bucket bounds of http.client.request.duration, in seconds, as the semantic
// conventions advise (and as otelhttp used).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func newClientTelemetry(next http.RoundTripper, mp metric.MeterProvider, tp trace.TracerProvider) *clientTelemetry {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &clientTelemetry{
		next:   next,
		global: otel.GetTracerProvider().Tracer(instrumentationName),
		prop:   otel.GetTextMapPropagator(), // the global one follows SetTextMapPropagator
	}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentationName)
	}
	d, err := httpconv.NewClientRequestDuration(mp.Meter(instrumentationName), metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	t.duration = d
	empty := map[attrKey][]metric.RecordOption{}
	t.sets.Store(&empty)
	return t
}

func (t *clientTelemetry) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	ctx := req.Context()
	tracer := t.tracer
	if tracer == nil {
		if sp := trace.SpanFromContext(ctx); sp.SpanContext().IsValid() {
			tracer = sp.TracerProvider().Tracer(instrumentationName)
		} else if !globalTracerUnset() {
			tracer = t.global
		}
	}
	span := noSpan
	if tracer != nil {
		ctx, span = tracer.Start(ctx, spanName(req.Method), clientSpanOpts...)
	}
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(requestSpanAttrs(req)...)
	}

	// The request goes on unchanged unless the span is recorded (its
	// context rides along) or the propagator writes headers.
	carrier := carrierPool.Get().(*headerCarrier)
	carrier.orig = req.Header
	t.prop.Inject(ctx, carrier)
	injected := carrier.h
	*carrier = headerCarrier{}
	carrierPool.Put(carrier)
	out := req
	if recording || injected != nil {
		out = req.WithContext(ctx)
		if injected != nil {
			out.Header = injected
		}
	}

	resp, err := t.next.RoundTrip(out)
	status := 0
	var proto string
	if err == nil {
		status = resp.StatusCode
		proto = resp.Proto
	}
	if proto == "" {
		proto = req.Proto
	}
	t.duration.Inst().Record(ctx, float64(time.Since(start))/float64(time.Second), t.attrs(req, proto, status, err)...)

	if !recording {
		span.End()
		return resp, err
	}
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	sb := &spanBody{rc: resp.Body, span: span}
	if _, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = &spanRWBody{sb} // an upgraded connection stays writable
	} else {
		resp.Body = sb
	}
	return resp, nil
}

// CloseIdleConnections passes through to the transport below.
func (t *clientTelemetry) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// attrs returns the measurement options of one attempt, from the cache when
// the attribute set was seen before.
func (t *clientTelemetry) attrs(req *http.Request, proto string, status int, err error) []metric.RecordOption {
	k := attrKey{method: standardMethod(req.Method), scheme: "http", proto: proto, status: status}
	if req.URL != nil {
		if req.URL.Scheme != "" {
			k.scheme = req.URL.Scheme
		}
		k.host, k.port = splitHostPort(req.URL.Host)
	}
	if k.host == "" && k.port < 0 {
		k.host, k.port = splitHostPort(req.Host)
	}
	if k.port == 80 && k.scheme == "http" || k.port == 443 && k.scheme == "https" {
		k.port = -1
	}
	if status == 0 && err != nil {
		k.errType = errorType(err)
	}
	sets := *t.sets.Load()
	if o, ok := sets[k]; ok {
		return o
	}
	o := []metric.RecordOption{metric.WithAttributeSet(k.set())}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := *t.sets.Load()
	if len(cur) >= maxAttrSets {
		return o
	}
	next := make(map[attrKey][]metric.RecordOption, len(cur)+1)
	for ck, co := range cur {
		next[ck] = co
	}
	next[k] = o
	t.sets.Store(&next)
	return o
}

func (k attrKey) set() attribute.Set {
	kv := make([]attribute.KeyValue, 0, 8)
	kv = append(kv,
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.ServerAddress(k.host),
		semconv.URLScheme(k.scheme))
	if k.port > 0 {
		kv = append(kv, semconv.ServerPort(k.port))
	}
	name, version, _ := strings.Cut(k.proto, "/")
	if name != "" {
		kv = append(kv, semconv.NetworkProtocolName(strings.ToLower(name)))
	}
	if version != "" {
		kv = append(kv, semconv.NetworkProtocolVersion(version))
	}
	if k.status > 0 {
		kv = append(kv, semconv.HTTPResponseStatusCode(k.status))
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	return attribute.NewSet(kv...)
}

// requestSpanAttrs are the attributes of a recorded client span.
func requestSpanAttrs(req *http.Request) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 6)
	kv = append(kv, semconv.HTTPRequestMethodKey.String(standardMethod(req.Method)))
	if m := standardMethod(req.Method); m != req.Method {
		kv = append(kv, semconv.HTTPRequestMethodOriginal(req.Method))
	}
	if req.URL != nil {
		u := *req.URL
		u.User = nil
		kv = append(kv, semconv.URLFull(u.String()))
		host, port := splitHostPort(req.URL.Host)
		kv = append(kv, semconv.ServerAddress(host))
		if port > 0 {
			kv = append(kv, semconv.ServerPort(port))
		}
	}
	if _, v, ok := strings.Cut(req.Proto, "/"); ok && v != "" {
		kv = append(kv, semconv.NetworkProtocolVersion(v))
	}
	return kv
}

// splitHostPort splits "host:port", "[v6]:port", "host" or "[v6]"; port is
// -1 when absent or not a number.
func splitHostPort(hostport string) (string, int) {
	if hostport == "" {
		return "", -1
	}
	if hostport[0] == '[' {
		end := strings.LastIndexByte(hostport, ']')
		if end < 0 {
			return "", -1
		}
		if end == len(hostport)-1 {
			return hostport[1:end], -1
		}
	} else if !strings.Contains(hostport, ":") {
		return hostport, -1
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return host, -1
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, -1
	}
	return host, int(n)
}

// spanName is the name of an attempt's span, "HTTP GET" (as otelhttp
// named it), without a concatenation for the usual methods.
func spanName(m string) string {
	switch m {
	case http.MethodGet, "":
		return "HTTP GET"
	case http.MethodHead:
		return "HTTP HEAD"
	case http.MethodPost:
		return "HTTP POST"
	case http.MethodPut:
		return "HTTP PUT"
	case http.MethodDelete:
		return "HTTP DELETE"
	case http.MethodPatch:
		return "HTTP PATCH"
	}
	return "HTTP " + m
}

// standardMethod is the http.request.method value: a known method, or
// _OTHER.
func standardMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet
	}
	u := strings.ToUpper(m)
	switch u {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return u
	}
	return "_OTHER"
}

// errorType is the error.type of a failed attempt: the error's Go type, a
// value of low cardinality.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t == nil {
		return "_OTHER"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" || t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// clientSpanOpts are the start options of every span, in a slice made once
// (a variadic argument through an interface call would be allocated each time).
var clientSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// noSpan stands for the span of an attempt nobody traces.
var noSpan = trace.SpanFromContext(context.Background())

// globalTracerUnset reports whether the global tracer provider is still
// OpenTelemetry's placeholder, which no SetTracerProvider has replaced: its
// spans are neither recorded nor carry a trace, so an attempt whose context
// has no span of its own need not start one. The answer is kept for the
// provider it was found for; a SetTracerProvider changes the provider and
// so is noticed at the next attempt.
func globalTracerUnset() bool {
	tp := otel.GetTracerProvider()
	ty := reflect.TypeOf(tp)
	if ty == nil || !ty.Comparable() {
		return false
	}
	if g := lastGlobal.Load(); g != nil && g.tp == tp {
		return g.unset
	}
	unset := ty.Kind() == reflect.Pointer && ty.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
	lastGlobal.Store(&globalTP{tp: tp, unset: unset})
	return unset
}

type globalTP struct {
	tp    trace.TracerProvider
	unset bool
}

var lastGlobal atomic.Pointer[globalTP]

// carrierPool recycles headerCarriers: handed to a propagator through an
// interface, one would escape to the heap on every attempt.
var carrierPool = sync.Pool{New: func() any { return new(headerCarrier) }}

// headerCarrier lets a propagator write into a copy of the request's
// headers, made on its first Set: a propagator that writes nothing costs no
// copy.
type headerCarrier struct {
	orig, h http.Header
}

func (c *headerCarrier) cur() http.Header {
	if c.h != nil {
		return c.h
	}
	return c.orig
}

func (c *headerCarrier) Get(key string) string { return c.cur().Get(key) }

func (c *headerCarrier) Set(key, value string) {
	if c.h == nil {
		c.h = c.orig.Clone()
		if c.h == nil {
			c.h = make(http.Header, 1)
		}
	}
	c.h.Set(key, value)
}

func (c *headerCarrier) Keys() []string {
	h := c.cur()
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// spanBody ends the attempt's span when the response body is read to its
// end or closed, recording a read error on it.
type spanBody struct {
	rc    io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.end()
	default:
		b.span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		b.span.SetStatus(codes.Error, err.Error())
	}
	return n, err
}

func (b *spanBody) Close() error {
	b.end()
	return b.rc.Close()
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

// spanRWBody keeps the body of a 101 Switching Protocols response writable.
type spanRWBody struct{ *spanBody }

func (b *spanRWBody) Write(p []byte) (int, error) { return b.rc.(io.Writer).Write(p) }
