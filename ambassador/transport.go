package ambassador

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Tuning of the default base transport. A proxy talks to few hosts with
// many concurrent requests, so idle connections per host are sized far above
// net/http's default of 2.
const (
	baseDialTimeout         = 5 * time.Second
	baseKeepAlive           = 30 * time.Second
	baseMaxIdleConns        = 1024
	baseMaxIdleConnsPerHost = 256
	baseIdleConnTimeout     = 90 * time.Second
	baseTLSHandshakeTimeout = 10 * time.Second
	baseExpectContinue      = 1 * time.Second
)

// MaxResponseHeaderBytes bounds the response headers the default base
// transport reads from an upstream (HTTP/1.1 status line and headers, or
// an HTTP/2 header list, which the transport also announces to the
// upstream as its limit): a request whose response headers are larger
// fails with the transport's error, and no more of them is buffered. It is
// net/http's server-side default for request headers (1 MiB); net/http's
// client would read up to 10 MiB per response. A base transport given
// with WithBase keeps its own.
const MaxResponseHeaderBytes = 1 << 20

// newBaseTransport builds the transport under a stack for c's protocol:
// HTTP/1.1 (over TLS when ts is set), h2c (HTTP/2 with prior knowledge, no
// TLS) or h2 (HTTP/2 over TLS by ALPN). It never uses an environment proxy
// and never adds Accept-Encoding: the bytes arrive as the upstream sent them.
func newBaseTransport(c ServiceConfig, ts *tlsSource) *http.Transport {
	d := &net.Dialer{Timeout: baseDialTimeout, KeepAlive: baseKeepAlive}
	t := &http.Transport{
		DialContext:            d.DialContext,
		MaxIdleConns:           baseMaxIdleConns,
		MaxIdleConnsPerHost:    baseMaxIdleConnsPerHost,
		MaxConnsPerHost:        c.MaxConnections,
		IdleConnTimeout:        baseIdleConnTimeout,
		TLSHandshakeTimeout:    baseTLSHandshakeTimeout,
		ExpectContinueTimeout:  baseExpectContinue,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
	var p http.Protocols
	var alpn []string
	switch c.Protocol {
	case ProtocolH2C:
		p.SetUnencryptedHTTP2(true)
	case ProtocolH2:
		p.SetHTTP2(true)
		t.ForceAttemptHTTP2 = true
		alpn = []string{"h2"}
	default:
		p.SetHTTP1(true)
		alpn = []string{"http/1.1"}
	}
	t.Protocols = &p
	if ts != nil {
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ts.dial(ctx, d, network, addr, alpn)
		}
	}
	return t
}

// dial connects to addr and performs the TLS handshake with the current
// certificates, so a rotation applies to every new connection.
func (s *tlsSource) dial(ctx context.Context, d *net.Dialer, network, addr string, alpn []string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg := s.clientConfig(host, alpn)
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, baseTLSHandshakeTimeout)
	defer cancel()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		// Part of connecting: nothing of the request was sent, and
		// errors.As finds a dial *net.OpError (with the TLS error in it).
		return nil, &net.OpError{Op: "dial", Net: network, Source: raw.LocalAddr(), Addr: raw.RemoteAddr(), Err: err}
	}
	return tc, nil
}

// httpsScheme sends the picked endpoint's request over TLS.
type httpsScheme struct{ next http.RoundTripper }

func (h httpsScheme) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" {
		return h.next.RoundTrip(req)
	}
	r2 := *req
	u := *req.URL
	u.Scheme = "https"
	r2.URL = &u
	return h.next.RoundTrip(&r2)
}
