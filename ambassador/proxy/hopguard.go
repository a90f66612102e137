package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// dropH2CUpgrade removes an offer to upgrade to h2c (cleartext HTTP/2,
// RFC 7540 §3.2) from a request about to be proxied, and any HTTP2-Settings
// header. An upstream that accepted such an upgrade would turn the client's
// connection into a raw HTTP/2 connection to that upstream, past every
// route and policy of the ambassador; RFC 9113 §3.1 deprecates the upgrade
// and lets a server ignore it, so the request goes on as a plain request.
// Other offers in the same Upgrade header (websocket) are kept; when none
// is left, Upgrade goes and so does the "Upgrade" token of Connection.
//
// It runs on the outgoing request after ReverseProxy removed the hop-by-hop
// headers and re-added the Connection and Upgrade of a protocol switch, so
// Connection then holds only that token.
func dropH2CUpgrade(h http.Header) {
	delete(h, "Http2-Settings")
	vals, ok := h["Upgrade"]
	if !ok {
		return
	}
	var kept []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			name, _, _ := strings.Cut(p, "/")
			if p != "" && !strings.EqualFold(strings.TrimSpace(name), "h2c") {
				kept = append(kept, p)
			}
		}
	}
	if len(kept) == len(vals) && len(vals) == 1 && kept[0] == strings.TrimSpace(vals[0]) {
		return // nothing removed (the common WebSocket case)
	}
	if len(kept) == 0 {
		delete(h, "Upgrade")
		delete(h, "Connection")
		return
	}
	h["Upgrade"] = []string{strings.Join(kept, ", ")}
}

// closeAfterChunkedRequest makes the server close an HTTP/1.x client
// connection after answering a request whose body came with
// Transfer-Encoding. net/http lets Transfer-Encoding win over a
// Content-Length sent with it, as RFC 9112 §6.3 says, but keeps the
// connection open, and removes the Content-Length before the handler can
// see it; yet §6.1 requires closing after such a request, because a
// client (or a proxy in front of us) that framed it by its Content-Length
// has sent a second request hidden in the first's body, and reading on
// would forward that smuggled request upstream. Not knowing whether a
// Content-Length was there, every chunked request ends its connection;
// chunked uploads are rare and the cost is one new connection.
func closeAfterChunkedRequest(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		w.Header()["Connection"] = []string{"close"}
	}
}

// switchHeaders removes from the headers of an upstream's 101 what belongs
// to the upstream's hop: the fields its Connection names and the standard
// hop-by-hop ones (ReverseProxy removes them from every other response,
// but copies a 101's as they came, golang/go#80875). What makes the switch
// stays: the "Upgrade" token of Connection, if the upstream sent it
// (ReverseProxy refuses a switch without it), and Upgrade.
func switchHeaders(h http.Header) {
	upgrade := false
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			switch f = strings.TrimSpace(f); {
			case strings.EqualFold(f, "Upgrade"):
				upgrade = true
			case f != "":
				h.Del(f)
			}
		}
	}
	for _, k := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding"} {
		delete(h, k)
	}
	if upgrade {
		h["Connection"] = []string{"Upgrade"}
	}
}

// checkSwitch refuses an upstream's 101 that ReverseProxy would refuse
// itself (a protocol other than the one the request offered, or none),
// but without closing the upstream's connection (golang/go#80875): from
// ModifyResponse the error makes ReverseProxy close the response body,
// which is that connection, before it answers 502.
func checkSwitch(resp *http.Response) error {
	want, got := upgradeType(resp.Request.Header), upgradeType(resp.Header)
	if got == "" || !printableASCII(got) || !strings.EqualFold(want, got) {
		return fmt.Errorf("upstream switched to protocol %q when %q was requested", got, want)
	}
	if _, ok := resp.Body.(io.ReadWriteCloser); !ok {
		return errors.New("upstream's 101 has no connection to switch")
	}
	return nil
}

// upgradeType is the protocol a message's Upgrade names when its
// Connection holds the "upgrade" token, else "".
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// printableASCII reports whether s is printable ASCII, as ReverseProxy
// requires of a switch's protocol (strings.EqualFold alone would match
// "ſ" with "s").
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// enableFullDuplex lets an HTTP/1.x request's body keep flowing to the
// upstream after the response has begun, as it does over HTTP/2: by
// default net/http's server reads what is left of the body itself (up to
// 256 KiB, discarding it) before it writes the response headers, so an
// upstream that answers while the upload goes on (an echo, a progress
// stream) lost the rest of the body, or the exchange stalled, the client
// waiting for the answer and the server for the body. A chunked request
// already kept flowing (closeAfterChunkedRequest: net/http skips the read
// on a connection it will close); this does the same for one with a
// Content-Length. What the upstream left unread is still read and dropped,
// or the connection closed, as before (callerBody.discardRest,
// closeIfBodyLeft).
func enableFullDuplex(w http.ResponseWriter) {
	_ = http.NewResponseController(w).EnableFullDuplex()
}

// closeIfBodyLeft adds "Connection: close" to the header of a full-duplex
// HTTP/1 answer when more of the request body is unread than net/http's
// server drains after the handler (drainLimit): the server then closes the
// connection, and a client not told so would send its next request on a
// connection about to close. Without full duplex the server itself
// decides this as it writes the header; in full duplex it skips that, and
// closes the connection without a word.
func closeIfBodyLeft(w *logWriter, h http.Header) {
	if w.duplex && w.status != http.StatusSwitchingProtocols && w.in.leavesTooMuch() {
		h["Connection"] = []string{"close"}
	}
}
