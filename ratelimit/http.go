package ratelimit

import (
	"net/http"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/retryafter"
)

// RoundTripper returns next wrapped by the Limiter: each request takes a token
// from its host's bucket (or the global one) before it is sent, or fails with
// a *LimitedError without reaching next. A 429 or 503 response with a
// Retry-After header pauses the key, unless Config.IgnoreRetryAfter. next nil
// means http.DefaultTransport.
func (l *Limiter) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{l: l, next: next}
}

type transport struct {
	l    *Limiter
	next http.RoundTripper
}

var _ http.RoundTripper = (*transport)(nil)

// RewritesURL reports whether a layer below rewrites an attempt's URL in
// place (see attempt.URLRewriter): the limiter itself does not.
func (t *transport) RewritesURL() bool { return attempt.RewritesURL(t.next) }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	l := t.l
	key := l.httpKey(req)
	now := l.nowFor(req.Context())
	b, name := l.bucket(key, now)
	if err := l.acquire(req.Context(), b, name, now); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil && !l.ignoreRetryAfter && resp != nil &&
		(resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryafter.FromResponse(resp, l.now()); ok && d > 0 {
			l.Pause(key, d)
		}
	}
	return resp, err
}

func (l *Limiter) httpKey(req *http.Request) string {
	switch {
	case l.global != nil:
		return globalKey
	case l.keyFunc != nil:
		return l.keyFunc(req)
	case req.URL != nil:
		return req.URL.Host
	}
	return req.Host
}
