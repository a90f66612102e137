package ambassador

import "net/http"

// Middleware wraps a RoundTripper with one policy. The RoundTripper methods of
// the policy types fit it as method values: retry.Policy.RoundTripper,
// ratelimit.Limiter.RoundTripper, breaker.Breaker.RoundTripper and
// discovery.Service.RoundTripper.
type Middleware func(next http.RoundTripper) http.RoundTripper

// Chain stacks mws over base. mws[0] is the outermost layer: it sees the
// caller's request first and the response last. A nil base means
// http.DefaultTransport; nil middlewares are skipped.
func Chain(base http.RoundTripper, mws ...Middleware) http.RoundTripper {
	rt := base
	if rt == nil {
		rt = http.DefaultTransport
	}
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			rt = mws[i](rt)
		}
	}
	return rt
}
