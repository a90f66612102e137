package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/internal/testkit"
)

// startTLSEcho starts a TLS echo server with a certificate of p that
// requires a client certificate of p, and greets each connection with the
// client certificate's common name and a newline.
func startTLSEcho(t *testing.T, p *testkit.PKI) string {
	t.Helper()
	certPEM, keyPEM := p.Issue("server", true)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.Pool,
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
				if _, err := io.WriteString(tc, cn+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(tc, tc)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func tlsYAML(c ambassador.TLSConfig) string {
	return "tls: {ca_file: " + c.CAFile + ", cert_file: " + c.CertFile + ", key_file: " + c.KeyFile + "}"
}

// TestTCPOriginatesMTLS: with tls: set the ambassador connects with TLS
// and its client certificate (the upstream requires one), and a rotated
// certificate file is used by the next connection.
func TestTCPOriginatesMTLS(t *testing.T) {
	p := testkit.NewPKI(t)
	up := startTLSEcho(t, p)
	a := startTCPAmb(t, []string{up}, tlsYAML(p.ClientTLS("alice")), "")
	c := a.dial(t)
	require.Equal(t, "alice\n", readGreeting(t, c, 6))
	echoOnce(t, c, "over TLS")

	p.ClientTLS("bobby") // rewrites the same files
	require.Eventually(t, func() bool {
		nc, err := net.DialTimeout("tcp", a.addr, time.Second)
		if err != nil {
			return false
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 6)
		_, err = io.ReadFull(nc, b)
		return err == nil && string(b) == "bobby\n"
	}, 10*time.Second, 20*time.Millisecond, "the rotated certificate was not used")
	echoOnce(t, c, "the old pair is unaffected")
}

// TestTCPTLSVerifyFailureIsConnectFailure: an upstream whose certificate
// the CA does not sign fails the handshake; that is a failed connect
// (connect_failed, the endpoint's failure), and no byte reaches the client.
func TestTCPTLSVerifyFailureIsConnectFailure(t *testing.T) {
	up := startTLSEcho(t, testkit.NewPKI(t))
	other := testkit.NewPKI(t)
	a := startTCPAmb(t, []string{up}, tlsYAML(other.ClientTLS("alice")), "")
	c := a.dial(t)
	waitEOF(t, c)
	require.Eventually(t, func() bool {
		return a.counter(t, "outbound.tcp.connections", map[string]string{"result": "connect_failed"}) == 1
	}, 5*time.Second, 5*time.Millisecond)
	eps := a.srv.Status().Services["db"].Endpoints
	require.Len(t, eps, 1)
	assert.Equal(t, int64(1), eps[0].Failures)
	assert.Contains(t, eps[0].LastError, "certificate")
}

// TestTCPConnectTimeoutCoversTLSHandshake: an upstream that accepts but
// never answers the TLS handshake is a failed connect once
// tcp.connect_timeout has passed, and the client connection is closed.
func TestTCPConnectTimeoutCoversTLSHandshake(t *testing.T) {
	mute := startMute(t)
	p := testkit.NewPKI(t)
	a := startTCPAmb(t, []string{mute}, tlsYAML(p.ClientTLS("alice"))+"\ntcp: {connect_timeout: 100ms}", "")
	start := time.Now()
	c := a.dial(t)
	waitEOF(t, c)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.Eventually(t, func() bool {
		return a.counter(t, "outbound.tcp.connections", map[string]string{"result": "connect_failed"}) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(a.log.String(), `"end":"connect_failed"`) }, 5*time.Second, 5*time.Millisecond)
	assert.Contains(t, a.log.String(), "deadline exceeded")
}

// startMute starts a TCP server that accepts connections and never
// writes; they are closed when the peer closes or the test ends.
func startMute(t *testing.T) string {
	t.Helper()
	return testkit.NewRawUpstream(t, func(_ *testkit.RawUpstream, _ net.Conn, br *bufio.Reader) {
		_, _ = io.Copy(io.Discard, br)
	}).Addr()
}
