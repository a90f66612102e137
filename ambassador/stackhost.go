package ambassador

import (
	"net/http"
	"net/url"
	"strings"
)

// serviceRequest reports whether req is for the stack's logical host and
// returns the request to send through the stack. The logical host matches
// case-insensitively, with or without the scheme's default port:
// http://USERS/x, http://users:80/x and https://users:443/x are all the
// service "users". Any other port (http://users:8080/x) is another
// destination and passes through: the service's endpoints have their own
// ports, so an explicit port names something else.
//
// The exact match, by far the common case, costs one comparison and returns
// req itself. A normalised match returns a shallow copy whose URL host is
// the service name (and whose Host header is too, unless the caller set
// one of its own), so the layers below see the request exactly as if it
// had been written http://<name>/…; the caller's request is not modified.
func (s *Stack) serviceRequest(req *http.Request) (*http.Request, bool) {
	if req.URL == nil {
		return req, false
	}
	if req.URL.Host == s.name {
		return req, true
	}
	if !logicalHost(req.URL.Scheme, req.URL.Host, s.name) {
		return req, false
	}
	c := &reqCopy{r: *req, u: *req.URL}
	c.u.Host = s.name
	c.r.URL = &c.u
	if req.Host == "" || req.Host == req.URL.Host || logicalHost(req.URL.Scheme, req.Host, s.name) {
		c.r.Host = s.name
	}
	return &c.r, true
}

// reqCopy holds a request copy and its URL in one allocation.
type reqCopy struct {
	r http.Request
	u url.URL
}

// logicalHost reports whether host (a URL's host, maybe with a port) names
// the logical host name under scheme: equal ignoring case, with no port or
// the scheme's default one (80 for http, 443 for https).
func logicalHost(scheme, host, name string) bool {
	if strings.EqualFold(host, name) {
		return true
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return false // no port (an IPv6 literal's colons are inside brackets)
	}
	switch port := host[i+1:]; {
	case port == "80" && strings.EqualFold(scheme, "http"):
	case port == "443" && strings.EqualFold(scheme, "https"):
	default:
		return false
	}
	return strings.EqualFold(host[:i], name)
}
