package discovery

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/inbound"
	"github.com/outbound-go/outbound/internal/logicalhost"
	"github.com/outbound-go/outbound/internal/refusal"
)

// RoundTripper returns a RoundTripper that sends requests for the logical
// host s.Name() (http://users/… for service "users"; in any case, and with
// the scheme's default port: http://users:80/…, https://users:443/…) to
// one endpoint per attempt, through next. Requests for any other host (or
// port: http://users:8080/…) go to next untouched.
//
// For a rewritten request the caller's request is never modified: the
// attempt gets a shallow copy with its own URL whose host is the picked
// endpoint's host:port (when the request is already the attempt's own copy
// made by the retry layer above, that copy is rewritten instead); scheme, path and query stay. The Host header the
// upstream sees is, in order: the WithHost option if set; the caller's
// req.Host if it was set to something other than the logical name (with
// WithPreservedHost, if it was set at all); else the endpoint's host:port,
// exactly as if the caller had dialled it directly.
// For https://<name>/… the TLS server name next verifies is the endpoint's
// host too: give next a tls.Config with ServerName set when the endpoints'
// certificates name the service instead.
//
// The pick avoids endpoints this logical request already tried (the attempt
// record retry keeps in the context) while another ready one exists, skips
// endpoints that are not ready, and records the pick in that record. With no
// ready endpoint the request is not sent: RoundTrip closes its body and
// returns a *NoEndpointsError wrapping ErrNoEndpoints. When a layer below
// (a breaker) refuses the picked endpoint locally, without sending — its
// readiness changed between the pick and the send — RoundTrip picks another
// ready endpoint, up to three times, if the request can be sent again (no
// body, or a GetBody); else the refusal is returned.
//
// The endpoint's in-flight count and latency cover the time until the
// response headers arrive (RoundTrip returning), not the body: a long
// streamed body does not count as load. A transport error, a 5xx or a 429
// counts as a failure, recorded as slow (see the package doc) so the ewma
// balancer sends a fast-failing endpoint less traffic, not more; a request
// the caller cancelled, or one that failed because reading the caller's
// request body failed, is not recorded (the failure is the caller's).
func (s *Service) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{s: s, next: next}
}

type transport struct {
	s    *Service
	next http.RoundTripper
}

var _ http.RoundTripper = (*transport)(nil)

// RewritesURL reports that this layer rewrites an attempt's URL in place
// when the request is the attempt's own copy (see attempt.URLRewriter).
func (t *transport) RewritesURL() bool { return true }

// reqCopy holds the attempt's request and its URL in one allocation.
type reqCopy struct {
	r http.Request
	u url.URL
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.s
	if req.URL == nil || !logicalhost.Match(req.URL.Scheme, req.URL.Host, s.name) {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	rec, _ := attempt.FromContext(ctx)
	ep, err := s.pick(ctx, rec)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	// Decide the Host header once, from the request as it came.
	host, setHost := "", false
	switch {
	case s.host != "":
		host, setHost = s.host, true
	case s.preserve && req.Host != "":
	case req.Host == "" || logicalhost.Match(req.URL.Scheme, req.Host, s.name):
		setHost = true
	}
	out := req
	if !attempt.Owned(req) {
		// Not the attempt's own copy (no retry above, or a layer in between
		// made another): copy it, never touch the caller's request.
		c := &reqCopy{r: *req, u: *req.URL}
		c.r.URL = &c.u
		out = &c.r
	}
	if setHost {
		out.Host = host
	}
	// A body no layer above tracks goes through a tracker, so that a
	// failure to read the caller's body is not recorded as the endpoint's.
	out.Body = inbound.Track(out.Body)
	var refused [maxRepicks]*endpoint
	for n := 0; ; n++ {
		resp, err := t.send(out, ep)
		if err == nil || !refusal.Is(err) || n == maxRepicks {
			return resp, err
		}
		// A layer below (the breaker) refused the endpoint without sending:
		// its readiness changed between the pick and the send (it tripped,
		// or its half-open probe slots filled). The request never left, so
		// another ready endpoint gets it now rather than the caller getting
		// a refusal while a healthy endpoint exists.
		refused[n] = ep
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			return nil, err // the body is gone with the refused send
		}
		next, perr := s.pick(ctx, rec)
		if perr != nil || slices.Contains(refused[:n+1], next) {
			return nil, err
		}
		b, ok := freshBody(req)
		if !ok {
			return nil, err
		}
		out.Body, ep = inbound.Track(b), next
	}
}

// maxRepicks bounds how many other endpoints one attempt tries after
// endpoints refused locally (by a breaker below) without sending.
const maxRepicks = 3

// freshBody returns a body for sending req again after a layer below
// refused it (and closed its body): none for a bodiless request, else one
// from GetBody. ok is false when the body cannot be had again.
func freshBody(req *http.Request) (io.ReadCloser, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	return b, true
}

// send sends out (a request this layer may rewrite) to ep through next and
// records the outcome in ep's load and latency.
func (t *transport) send(out *http.Request, ep *endpoint) (*http.Response, error) {
	out.URL.Host = ep.addr
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1) // also when next panics
	start := sentAt(out.Context())
	resp, err := t.next.RoundTrip(out)
	end := monoNow()
	rtt := time.Duration(end - start)
	switch {
	case err != nil:
		// Neither the caller's cancellation nor a failure to read the
		// caller's body says anything about the endpoint.
		if !errors.Is(err, context.Canceled) && !inbound.Failed(out.Body, err) {
			ep.observeAt(end, rtt, true)
			ep.failedWith(err.Error())
		}
	default:
		failed := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		ep.observeAt(end, rtt, failed)
		if failed {
			ep.failedWith(resp.Status)
		}
	}
	return resp, err
}
