package breaker

import (
	"net/http"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/inbound"
)

// RoundTripper returns next wrapped in the breaker: each request goes
// through the breaker of its key (by default req.URL.Host). A refused
// request is not sent; its body is closed and the error is an *OpenError
// wrapping ErrOpen. A sent request is classified when its response headers
// arrive (DefaultClassifier unless WithClassifier); the response body is
// the caller's, untouched. A request body is sent through a tracker (see
// the package doc): a failure to read it is the caller's, never counted.
func (b *Breaker) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{b: b, next: next}
}

type transport struct {
	b    *Breaker
	next http.RoundTripper
}

var _ http.RoundTripper = (*transport)(nil)

// RewritesURL reports whether a layer below rewrites an attempt's URL in
// place (see attempt.URLRewriter): the breaker itself does not.
func (t *transport) RewritesURL() bool { return attempt.RewritesURL(t.next) }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.b
	var key string
	if b.opts.keyFunc != nil {
		key = b.opts.keyFunc(req)
	} else if req.URL != nil {
		key = req.URL.Host
	}
	e := b.acquire(mkey{a: key})
	if e == nil {
		return t.next.RoundTrip(req)
	}
	defer b.release(e)
	out := req
	if !inbound.Tracked(req.Body) {
		// A body no layer above tracks: track it on a copy of the request,
		// so that a failure to read it is not the endpoint's.
		out = req.WithContext(req.Context())
		out.Body = inbound.Track(req.Body)
	}
	var (
		resp *http.Response
		err  error
		sent bool
	)
	_, _ = e.cb.Execute(func() (struct{}, error) {
		sent = true
		resp, err = t.next.RoundTrip(out)
		if inbound.Failed(out.Body, err) {
			return struct{}{}, errIgnored // the caller's failure, even when half-open
		}
		o := b.opts.classifier(req, resp, err)
		if err == nil && !b.opts.customClassifier {
			if g, ok := b.grpcHTTPOutcome(req, resp); ok {
				o = g
			}
		}
		return struct{}{}, outcomeErr(o)
	})
	if !sent {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		r := b.reject(e)
		b.flush()
		return nil, r.err
	}
	b.flush()
	return resp, err
}
