package proxy

import "net/http"

// What an upstream sends besides its final response headers: 1xx
// informational responses and trailers. Neither may carry the upstream's
// own X-Outbound-Error to the client, and 1xx responses are bounded.

// maxInformational bounds the 1xx responses (other than 101) relayed to the
// client per request, as net/http's client bounds those it reads itself
// (ReverseProxy's relay hook lifts that bound). Beyond it the upstream's
// further 1xx responses are dropped and the request goes on: its final
// response is relayed as usual, and an upstream that never sends one is cut
// off by the service's timeout (504 upstream_timeout).
const maxInformational = 5

// writeInformational relays a 1xx response that ReverseProxy copied into
// the header map, without the upstream's X-Outbound-Error, unless
// maxInformational were already relayed. (ReverseProxy clears the map
// after each 1xx, relayed or not.)
func (w *logWriter) writeInformational(code int) {
	delete(w.ResponseWriter.Header(), HeaderError)
	if w.n1xx >= maxInformational {
		return
	}
	w.n1xx++
	w.ResponseWriter.WriteHeader(code)
}

// stripTrailerError removes an upstream's X-Outbound-Error trailer from h,
// the header map of a response whose handler has written its headers, and
// which the server reads for trailers only once the handler returns.
// ReverseProxy copies the upstream's trailers into h after the body: under
// their own name when they are exactly those announced before the body
// (modifyResponse keeps X-Outbound-Error out of that announcement), else
// each with http.TrailerPrefix.
func stripTrailerError(h http.Header) {
	delete(h, HeaderError)
	delete(h, http.TrailerPrefix+HeaderError)
}
