package proxy

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// forwardingHeaders are the end-to-end headers ReverseProxy removes from
// the outbound request before Rewrite, so that an edge proxy does not pass
// on what an untrusted client claims.
var forwardingHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// keepForwarding puts back on out the forwarding headers of in. Behind the
// ambassador's listener is the application itself, whose request the
// ambassador carries on without adding to it: an application that relays
// its own client's address or scheme keeps doing so. A header that in's
// Connection names is hop-by-hop and stays removed.
func keepForwarding(in, out http.Header) {
	for _, k := range forwardingHeaders {
		v, ok := in[k]
		if !ok || httpguts.HeaderValuesContainsToken(in["Connection"], k) {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
}
