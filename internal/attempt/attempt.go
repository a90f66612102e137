// Package attempt carries the per-request attempt record between the layers
// of an outbound stack, and the little state that travels with it.
//
// What it carries, and who writes and reads it:
//
//   - Record: one per logical request, kept by the retry layer (or adopted
//     from the caller, WithRecord: the ambassador's access log reads it
//     after the request). Discovery reads which endpoints were tried and
//     adds the one it picks; the access log reads the attempt count and
//     the last endpoint. A request that did not pass through retry has no
//     record: every reader must cope with FromContext returning nil.
//   - The attempt context (WithAttempt, Call.Attempt, HTTPCall.Request):
//     the record and the attempt number, plus three things a layer below
//     may use to save work, each with its invariant on its field of
//     attemptCtx: the request copy it may rewrite in place (Owned), where
//     the gRPC trailer is captured (Trailer), and a real-clock reading
//     taken just before sending (Now, Refresh).
//   - Call, HTTPCall, GRPCCall: the retry layer's state for one logical
//     request in one allocation (or inside the ambassador Stack's own,
//     through ContextRoundTripper), so that a request with no retry
//     allocates no record, attempt context or URL of its own.
//
// A Record is safe for concurrent use: hedged attempts of one logical
// request run at the same time and share it. A Call is not: its attempts
// are sequential (see HTTPCall).
package attempt

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Record is the state one logical request keeps across its attempts.
type Record struct {
	started atomic.Int32

	mu sync.Mutex
	// n is the number of endpoints recorded; the first is first, the
	// others, in order, *more. A request that is not retried records its
	// endpoint without an allocation; room for more inline would put every
	// call state (HTTPCall, GRPCCall, the Stack's) in a larger size class
	// for the sake of retries, which wait out a backoff anyway.
	n     int32
	first string
	more  *[]string
}

// NewRecord returns an empty record. The zero Record is ready to use too.
func NewRecord() *Record { return &Record{} }

// Start counts a new attempt and returns its number, starting at 1.
func (r *Record) Start() int { return int(r.started.Add(1)) }

// Attempts reports how many attempts were started.
func (r *Record) Attempts() int { return int(r.started.Load()) }

// AddTried records that an attempt was sent to endpoint.
func (r *Record) AddTried(endpoint string) {
	r.mu.Lock()
	switch {
	case r.n == 0:
		r.first = endpoint
	case r.more == nil:
		r.more = &[]string{endpoint}
	default:
		*r.more = append(*r.more, endpoint)
	}
	r.n++
	r.mu.Unlock()
}

// Tried reports whether an earlier attempt of this request picked endpoint.
func (r *Record) Tried(endpoint string) bool { return r.LastTried(endpoint) > 0 }

// LastTried reports when an earlier attempt of this request last picked
// endpoint: the position of that pick among the recorded ones (1 for the
// first), or 0 when none picked it. Of two tried endpoints, the one with
// the smaller position was tried longer ago.
func (r *Record) LastTried(endpoint string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.more != nil {
		m := *r.more
		for i := len(m) - 1; i >= 0; i-- {
			if m[i] == endpoint {
				return i + 2
			}
		}
	}
	if r.n > 0 && r.first == endpoint {
		return 1
	}
	return 0
}

// TriedCount reports how many endpoints were recorded (with repeats).
func (r *Record) TriedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.n)
}

// LastEndpoint returns the endpoint most recently recorded, or "".
func (r *Record) LastEndpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.n == 0:
		return ""
	case r.n == 1:
		return r.first
	}
	m := *r.more
	return m[len(m)-1]
}

type ctxKey struct{}

// attemptCtx is a context that carries the record and the attempt number in
// one allocation.
type attemptCtx struct {
	context.Context
	rec *Record
	n   int

	// owned is the attempt's own shallow copy of the request, made by
	// HTTPCall.Request, with a URL of its own: a layer below may rewrite it
	// in place instead of copying it again (see Owned).
	//
	// Invariant: only the current attempt's request is owned. Request
	// clears the previous attempt's owned when it makes the next copy, so
	// a request copy already sent is never rewritten in place again
	// (TestOwnedOnlyCurrentAttempt).
	owned *http.Request
	// trailer, when set, is filled with the attempt's gRPC trailer by the
	// grpc.Trailer call option of GRPCCall.CallOptions (see Trailer).
	//
	// Invariant: it is valid once the attempt's invoker returned and until
	// the next GRPCCall.Attempt, which resets it.
	trailer *metadata.MD
	// now, when not zero, is a reading of the real clock taken by the layer
	// keeping the record just before it sent the attempt (Call.SetNow),
	// for layers below that would read it again (Now): the rate limiter's
	// bucket and discovery's latency start take it instead of a clock read.
	//
	// Invariant: it is the moment the attempt leaves the last layer that
	// may wait. A layer that waits before passing the attempt on (the rate
	// limiter, for a token) must Refresh it after the wait, or the layers
	// below take the time before the wait for the time of sending. Only a
	// layer on the real clock may set or refresh it (a fake clock's
	// readings would mix with real ones). Zero means "read the clock".
	now time.Time
}

func (c *attemptCtx) Value(key any) any {
	// A type assertion compares type words only; key == ctxKey{} would
	// call the runtime's interface equality on every lookup.
	if _, ok := key.(ctxKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// WithAttempt returns a child of parent that carries rec and attempt number n.
func WithAttempt(parent context.Context, rec *Record, n int) context.Context {
	return &attemptCtx{Context: parent, rec: rec, n: n}
}

// WithRecord returns a child of parent that carries rec before any attempt was
// started (attempt number 0). A caller that wants to read the record after the
// request — the ambassador's access log does — creates it and passes it down;
// the retry layer adopts a record it finds instead of making its own.
func WithRecord(parent context.Context, rec *Record) context.Context {
	return &attemptCtx{Context: parent, rec: rec}
}

// recordCtx is a WithRecord context and its record in one allocation.
type recordCtx struct {
	attemptCtx
	rec Record
}

// WithNewRecord is WithRecord(parent, NewRecord()) in one allocation
// instead of two: it returns the child context and its new record.
func WithNewRecord(parent context.Context) (context.Context, *Record) {
	c := &recordCtx{}
	c.attemptCtx = attemptCtx{Context: parent, rec: &c.rec}
	return &c.attemptCtx, &c.rec
}

// Parent returns the parent of ctx when ctx is itself an attempt context
// (made by WithAttempt, WithRecord, Call.Attempt or HTTPCall.Request), and
// false otherwise. A layer that gave the first attempt its parent
// (HTTPCall.UseFirstParent) recognises with it a request whose context is
// that attempt's, with nothing between.
func Parent(ctx context.Context) (context.Context, bool) {
	if c, ok := ctx.(*attemptCtx); ok {
		return c.Context, true
	}
	return nil, false
}

// FromContext returns the record and attempt number carried by ctx, or
// (nil, 0) when the request did not pass through a layer that keeps one.
func FromContext(ctx context.Context) (*Record, int) {
	if c, ok := ctx.Value(ctxKey{}).(*attemptCtx); ok {
		return c.rec, c.n
	}
	return nil, 0
}

// Call is what the retry layer needs for one logical request, in one
// allocation: the record (unless one was adopted from the caller's context)
// and the context of the first attempt.
type Call struct {
	rec   Record
	first attemptCtx
	last  *attemptCtx // the context of the current attempt; nil until the first (then it is &first)
	// parent is the logical request's context, the parent of every
	// attempt's but, when the caller gave the first attempt a parent of
	// its own (HTTPCall.UseFirstParent, which stores it in first before
	// init), the first's.
	parent context.Context
}

// init prepares c for a logical request under parent. adopt, when non-nil,
// is a record found in parent that the call uses instead of its own.
func (c *Call) init(parent context.Context, adopt *Record) {
	r := adopt
	if r == nil {
		r = &c.rec
	}
	c.parent = parent
	first := c.first.Context // UseFirstParent's, or nil
	if first == nil {
		first = parent
	}
	c.first = attemptCtx{Context: first, rec: r}
}

// Record returns the call's record.
func (c *Call) Record() *Record { return c.first.rec }

// Attempt returns the context of attempt n, a child of the call's parent.
// The first context it hands out is the preallocated one; later attempts
// allocate their own.
func (c *Call) Attempt(n int) context.Context {
	return c.attempt(n)
}

// SetNow records a reading of the real clock, taken just before the
// current attempt is sent, on the context the last Attempt or Request
// returned: layers below use it instead of reading the clock again (Now).
// Only a layer that runs on the real clock may set it.
func (c *Call) SetNow(t time.Time) { c.last.now = t }

func (c *Call) attempt(n int) *attemptCtx {
	if c.last == nil {
		c.first.n = n
		c.last = &c.first
		return &c.first
	}
	c.last = &attemptCtx{Context: c.parent, rec: c.first.rec, n: n}
	return c.last
}

// HTTPCall is a Call with room for the first attempt's request copy and,
// when a layer below may rewrite the attempts' URL (see NewHTTPCall and
// UseURL), a pointer to the storage of the URL those copies carry.
type HTTPCall struct {
	Call
	// url, when not nil, is the storage of the URL of the first attempt's
	// request copy (Request); nil means the copies share the caller's URL
	// and are never Owned (no layer below rewrites it: see RewritesURL).
	//
	// Invariant: like first, it is handed out once, to the first attempt,
	// and never written again: a later attempt's copy gets a URL of its
	// own. A transport may still read an attempt's request after its
	// RoundTrip returned (x/net/http2's, and net/http's bundled copy,
	// return on a cancelled context without waiting for the goroutine
	// that encodes the request headers from the URL), so a URL once sent
	// is never rewritten. Attempts through one HTTPCall are sequential;
	// hedged attempts, which overlap, do not use an HTTPCall.
	url *url.URL
	// first is the first attempt's request copy, in the call's own
	// allocation, handed out when the call's first attempt context is
	// (Call.last was nil).
	//
	// Invariant: it is handed out once, to the first attempt, and never
	// reused: a later attempt gets a request copy of its own, because the
	// transport below may still read an earlier attempt's request (an
	// HTTP/1 body still being written when the response came) and the
	// caller keeps the last one as resp.Request.
	first http.Request
}

// httpCallURL is an HTTPCall with its URL storage in the same allocation.
type httpCallURL struct {
	HTTPCall
	u url.URL
}

// NewHTTPCall returns the call state of one logical HTTP request under
// parent, with storage for the attempts' own URL (their copies are Owned);
// adopt as for Call.
func NewHTTPCall(parent context.Context, adopt *Record) *HTTPCall {
	c := &httpCallURL{}
	c.url = &c.u
	c.init(parent, adopt)
	return &c.HTTPCall
}

// NewHTTPCallSharedURL is NewHTTPCall without URL storage: the attempts'
// request copies share the caller's URL and are never Owned. It is for a
// layer that knows nothing below it rewrites URLs (RewritesURL is false):
// its call state holds no URL, and no attempt copies one.
func NewHTTPCallSharedURL(parent context.Context, adopt *Record) *HTTPCall {
	c := &HTTPCall{}
	c.init(parent, adopt)
	return c
}

// UseURL gives a zero HTTPCall that the caller allocated (see Init) the
// storage for its attempts' URL, u, so that their copies are Owned; it must
// be called before the call's first Request. Without it, as from
// NewHTTPCallSharedURL, the copies share the caller's URL.
func (c *HTTPCall) UseURL(u *url.URL) { c.url = u }

// UseFirstParent makes p, which must be a child of the parent Init will be
// given, the parent of the first attempt's context (later attempts' stay
// children of Init's parent); it must be called before Init. The
// ambassador's Stack gives its re-send guard's context for the first
// attempt this way, so the guard can take the first attempt's request as
// it is instead of copying it to change its context (see Parent).
func (c *HTTPCall) UseFirstParent(p context.Context) { c.Call.first.Context = p }

// Init prepares a zero HTTPCall that the caller allocated (inside an object
// of its own, to save an allocation) as NewHTTPCall would; it keeps the
// URL storage UseURL gave it, if any.
func (c *HTTPCall) Init(parent context.Context, adopt *Record) { c.init(parent, adopt) }

// Request returns attempt n's shallow copy of req, whose context is the
// attempt's (carrying the record and n). With URL storage (NewHTTPCall,
// UseURL) its URL is a copy of its own (the call's storage for the first
// attempt, a new one for later attempts: see url), and layers below may
// rewrite it in place (Owned reports it) until the next call of Request;
// without, it shares req's URL and is not Owned.
func (c *HTTPCall) Request(req *http.Request, n int) *http.Request {
	if c.last != nil {
		c.last.owned = nil // only the current attempt's copy is owned
	}
	firstAttempt := c.last == nil
	a := c.attempt(n)
	var r *http.Request
	if firstAttempt {
		// WithContext is inlined and its copy does not escape: this
		// copies the request into the call's storage without an
		// allocation of its own.
		c.first = *req.WithContext(a)
		r = &c.first
	} else {
		r = req.WithContext(a)
	}
	if req.URL != nil && c.url != nil {
		if firstAttempt {
			*c.url = *req.URL
			r.URL = c.url
		} else {
			u := *req.URL
			r.URL = &u
		}
		a.owned = r
	}
	return r
}

// URLRewriter is implemented by this module's RoundTrippers to tell the
// layer keeping the attempt record, when it is built over them, whether
// they or a layer below them rewrite an Owned request's URL in place (as
// discovery does): only then does the call state need URL storage (see
// NewHTTPCall, NewHTTPCallSharedURL).
type URLRewriter interface {
	RewritesURL() bool
}

// RewritesURL reports whether rt, or a layer below it, rewrites Owned
// requests' URL: false for a RoundTripper that is not a URLRewriter (a
// base transport, or a wrapper of the user's). A wrong false costs an
// allocation, never correctness: a request that is not Owned is copied
// by the layer that rewrites it.
func RewritesURL(rt http.RoundTripper) bool {
	w, ok := rt.(URLRewriter)
	return ok && w.RewritesURL()
}

// Owned reports whether req is the request copy that the layer keeping the
// attempt record made for the current attempt, with a URL of its own: a
// layer below may then change req's URL and Host in place instead of
// copying it, as nothing else holds it.
func Owned(req *http.Request) bool {
	c, ok := req.Context().Value(ctxKey{}).(*attemptCtx)
	return ok && c.owned == req && req.URL != nil
}

// GRPCCall is a Call with room for the trailer of the attempts and the
// call options that capture it.
type GRPCCall struct {
	Call
	trailer metadata.MD
	opts    [4]grpc.CallOption
}

// NewGRPCCall returns the call state of one logical gRPC call under parent;
// adopt as for Call.
func NewGRPCCall(parent context.Context, adopt *Record) *GRPCCall {
	c := &GRPCCall{}
	c.init(parent, adopt)
	return c
}

// CallOptions returns opts plus a grpc.Trailer option that fills the
// call's trailer (see Trailer), without allocating when opts is short.
func (c *GRPCCall) CallOptions(opts []grpc.CallOption) []grpc.CallOption {
	t := grpc.Trailer(&c.trailer)
	if len(opts) == 0 {
		c.opts[0] = t
		return c.opts[:1]
	}
	if len(opts) < len(c.opts) {
		out := append(c.opts[:0], opts...)
		return append(out, t)
	}
	return append(opts[:len(opts):len(opts)], t)
}

// Attempt returns the context of attempt n (see Call.Attempt). It carries
// the call's trailer, which is reset here: layers below read it with
// Trailer once their invoker returned.
func (c *GRPCCall) Attempt(n int) context.Context {
	a := c.attempt(n)
	c.trailer = nil
	a.trailer = &c.trailer
	return a
}

// Trailer returns the trailer of the last attempt, nil when there is none.
func (c *GRPCCall) Trailer() metadata.MD { return c.trailer }

// View is what a layer below reads of the current attempt (Now, Trailer)
// after one context lookup (Lookup) instead of one per question. The zero
// View answers as a context without an attempt does.
type View struct{ c *attemptCtx }

// Lookup returns the View of ctx's attempt.
func Lookup(ctx context.Context) View {
	c, _ := ctx.Value(ctxKey{}).(*attemptCtx)
	return View{c}
}

// Now is Now(ctx) for the ctx the View was looked up in.
func (v View) Now() (time.Time, bool) {
	if v.c != nil && !v.c.now.IsZero() {
		return v.c.now, true
	}
	return time.Time{}, false
}

// Trailer is Trailer(ctx) for the ctx the View was looked up in.
func (v View) Trailer() *metadata.MD {
	if v.c != nil {
		return v.c.trailer
	}
	return nil
}

// Now returns the real-clock reading the layer keeping the record took just
// before it sent this attempt (see Call.SetNow), or false.
func Now(ctx context.Context) (time.Time, bool) { return Lookup(ctx).Now() }

// Refresh replaces the real-clock reading that ctx's attempt carries (see
// Now) with t, a fresh one: a layer that waited before passing the attempt
// on (the rate limiter) calls it so that layers below do not take the
// reading from before the wait for the moment the attempt was sent. It does
// nothing when ctx carries no reading.
func Refresh(ctx context.Context, t time.Time) {
	if c, ok := ctx.Value(ctxKey{}).(*attemptCtx); ok && !c.now.IsZero() {
		c.now = t
	}
}

// Trailer returns where the current attempt's gRPC trailer is captured,
// when a layer above (retry) passes a grpc.Trailer option for it down with
// the call options; nil otherwise. It is valid once the invoker returned.
func Trailer(ctx context.Context) *metadata.MD { return Lookup(ctx).Trailer() }

// ContextRoundTripper is a RoundTripper that can send req under ctx in
// place of req.Context() without a request copy of its own; the retry
// layer's RoundTripper is one (every attempt is a copy anyway). A caller
// that only needs to change the context (the ambassador's Stack adding its
// timeout) uses it to save a copy.
//
// now, when not zero, is a reading of the real clock the caller has just
// taken: a layer on the real clock uses it instead of reading the clock
// again (a clock read is costly on some virtual machines). Only a caller
// on the real clock passes one.
//
// call, when not nil, is a zero HTTPCall the caller allocated for this
// request (it must not be used for anything else, nor after the response
// body is closed); the callee uses it instead of allocating its own.
type ContextRoundTripper interface {
	RoundTripContext(ctx context.Context, req *http.Request, now time.Time, call *HTTPCall) (*http.Response, error)
}
