package ambassador

import (
	"net/http"
	"net/url"

	"github.com/outbound-go/outbound/internal/logicalhost"
)

// serviceRequest reports whether req is for the stack's logical host and
// returns the request to send through the stack. The logical host matches
// as logicalhost.Match says: http://USERS/x, http://users:80/x and
// https://users:443/x are all the service "users"; any other port
// (http://users:8080/x) is another destination and passes through.
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
	if !logicalhost.Match(req.URL.Scheme, req.URL.Host, s.name) {
		return req, false
	}
	c := &reqCopy{r: *req, u: *req.URL}
	c.u.Host = s.name
	c.r.URL = &c.u
	if req.Host == "" || req.Host == req.URL.Host || logicalhost.Match(req.URL.Scheme, req.Host, s.name) {
		c.r.Host = s.name
	}
	return &c.r, true
}

// reqCopy holds a request copy and its URL in one allocation.
type reqCopy struct {
	r http.Request
	u url.URL
}
