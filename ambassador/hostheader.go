package ambassador

import (
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/confcheck"
)

// The keywords of ServiceConfig.HostHeader; any other non-empty value is a
// literal host name (or host:port) sent as the Host header.
//
// HostEndpoint (also the meaning of "") sends the picked endpoint's
// host:port on every attempt, as if the endpoint had been dialled directly;
// a library caller's own req.Host, set to something other than the
// service's name, is still kept. HostPreserve sends the client's Host: in
// the ambassador process the Host the inbound request carried, for a
// library caller req.Host as set (an empty req.Host means the endpoint's).
// A literal such as "api.example.com" is sent on every attempt, retries
// included, for upstreams behind virtual hosting.
//
// None of them changes TLS: the server name sent as SNI and verified in the
// endpoint's certificate is TLSConfig.ServerName, or the endpoint's host
// when that is empty. A literal host_header with TLS usually wants
// tls.server_name set to the same name; the two are kept independent so
// that either can be set alone.
const (
	HostEndpoint = "endpoint"
	HostPreserve = "preserve"
)

// hostLabelRE is a DNS name: labels of letters, digits, '-' and '_' (not
// starting or ending with '-'), at most 63 bytes each, with an optional
// final dot.
var hostLabelRE = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$`)

// hostOptions returns the discovery options that send c.HostHeader.
func (c ServiceConfig) hostOptions() []discovery.Option {
	switch c.HostHeader {
	case "", HostEndpoint:
		return nil
	case HostPreserve:
		return []discovery.Option{discovery.WithPreservedHost()}
	default:
		return []discovery.Option{discovery.WithHost(c.HostHeader)}
	}
}

// checkHostHeader records a problem at host_header unless v is "", a
// keyword or a valid literal host name or host:port.
func checkHostHeader(ck confcheck.Checker, v string) {
	switch v {
	case "", HostEndpoint, HostPreserve:
		return
	}
	if strings.EqualFold(v, HostEndpoint) || strings.EqualFold(v, HostPreserve) {
		ck.Add("host_header", "%q: write the keyword in lower case (%s or %s)", v, HostEndpoint, HostPreserve)
		return
	}
	if msg := hostHeaderProblem(v); msg != "" {
		ck.Add("host_header", "%q is not %s, %s or a host name or host:port: %s", v, HostEndpoint, HostPreserve, msg)
	}
}

// hostHeaderProblem says what is wrong with v as a literal Host header, ""
// when nothing is.
func hostHeaderProblem(v string) string {
	if len(v) > 261 { // a 253-byte name, ':' and a port
		return "longer than 261 bytes"
	}
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`/\?#@%"<>`, r)
	}); i >= 0 {
		return "contains " + strconv.QuoteRune(rune(v[i])) + " (spaces, slashes and URL syntax are not allowed)"
	}
	host := v
	if strings.HasPrefix(v, "[") || strings.Count(v, ":") == 1 {
		h, port, err := net.SplitHostPort(v)
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			h, port, err = v[1:len(v)-1], "", nil
		}
		if err != nil {
			return "not host:port"
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return "port " + strconv.Quote(port) + " is not 1-65535"
			}
		}
		if strings.HasPrefix(v, "[") {
			if a, err := netip.ParseAddr(h); err != nil || !a.Is6() {
				return "not an IPv6 address in brackets"
			}
			return ""
		}
		host = h
	}
	if strings.Contains(host, ":") {
		return "an IPv6 address needs brackets"
	}
	if _, err := netip.ParseAddr(host); err == nil || hostLabelRE.MatchString(host) {
		return ""
	}
	return "not a valid host name"
}
