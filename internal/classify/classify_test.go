package classify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/inbound"
	"github.com/outbound-go/outbound/internal/refusal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestError(t *testing.T) {
	live := context.Background()
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: "http://x", Err: err} }
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	read := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	cases := []struct {
		name string
		err  error
		want classify.Kind
	}{
		{"dial refused", wrap(dial), classify.ConnectFailure},
		{"dns", wrap(&net.DNSError{Err: "no such host", Name: "nope"}), classify.ConnectFailure},
		{"reset on read", wrap(read), classify.Reset},
		{"EOF before headers", wrap(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", io.EOF)), classify.Reset},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), classify.Reset},
		{"x/net refused stream", wrap(http2.StreamError{StreamID: 3, Code: http2.ErrCodeRefusedStream}), classify.RefusedStream},
		{"x/net other stream error", wrap(http2.StreamError{StreamID: 3, Code: http2.ErrCodeInternal}), classify.Other},
		{"net/http GOAWAY then close (text only)", wrap(errors.New(`http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=""`)), classify.Reset},
		{"net/http unprocessed stream (text only)", wrap(errors.New("http2: Transport: cannot retry err [http2: Transport received Server's graceful shutdown GOAWAY] after Request.Body was written; define Request.GetBody to avoid this error")), classify.RefusedStream},
		{"local refusal", fmt.Errorf("layer: %w", refusal.New("breaker open")), classify.LocalRefusal},
		{"caller's body failed", wrap(&inbound.Error{Err: io.ErrUnexpectedEOF}), classify.Inbound},
		{"per-try timeout", fmt.Errorf("attempt: %w", classify.ErrPerTryTimeout), classify.Timeout},
		{"unknown (text is not a type)", errors.New("x509: certificate signed by unknown authority"), classify.Other},
		{"TLS unknown authority", wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), classify.ConnectFailure},
		{"TLS wrong name", wrap(&tls.CertificateVerificationError{Err: x509.HostnameError{Host: "other.internal"}}), classify.ConnectFailure},
		{"x509 expired", wrap(x509.CertificateInvalidError{Reason: x509.Expired}), classify.ConnectFailure},
		{"TLS alert from the peer", wrap(&net.OpError{Op: "remote error", Err: tls.AlertError(116)}), classify.ConnectFailure},
		{"not TLS", wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), classify.ConnectFailure},
		{"transport re-send limit", fmt.Errorf("ambassador: %w", classify.ErrResendLimit), classify.Reset},
		{"transport re-send limit, HTTP/2", fmt.Errorf("ambassador: %w: %w", classify.ErrResendLimit, classify.ErrResendUnprocessed), classify.RefusedStream},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classify.Error(live, live, tc.err)
			assert.Equal(t, tc.want, got, "got %s", got)
		})
	}
}

func TestErrorCallerContextWins(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dial := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	assert.Equal(t, classify.Canceled, classify.Error(ctx, ctx, dial))
}

func TestErrorAttemptContext(t *testing.T) {
	caller := context.Background()
	actx, cancel := context.WithCancelCause(caller)
	cancel(classify.ErrPerTryTimeout)
	assert.Equal(t, classify.Timeout, classify.Error(caller, actx, context.Canceled))

	lost, cancelLost := context.WithCancelCause(caller)
	cancelLost(errors.New("lost"))
	assert.Equal(t, classify.Other, classify.Error(caller, lost, context.Canceled))
}

func TestRealNetHTTPErrors(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NoError(t, err)
	addr := lis.Addr().String()
	assert.NoError(t, lis.Close())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	_, err = (&http.Client{Transport: tr}).Get("http://" + addr)
	assert.Equal(t, classify.ConnectFailure, classify.Error(context.Background(), nil, err), "%v", err)
}

// net/http's own TLS handshake (a transport with TLSClientConfig, as a
// WithBase one may be) that fails verification is a connect failure.
func TestRealTLSVerificationError(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer srv.Close()
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}} // system roots: the test CA is unknown
	defer tr.CloseIdleConnections()
	_, err := (&http.Client{Transport: tr}).Post(srv.URL, "text/plain", strings.NewReader("x"))
	k := classify.Error(context.Background(), nil, err)
	assert.Equal(t, classify.ConnectFailure, k, "%v", err)
	assert.True(t, classify.NeverSent(k))
	assert.False(t, errors.Is(classify.ErrResendLimit, context.Canceled))
}

func TestIdempotent(t *testing.T) {
	for method, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true,
		"POST": false, "PATCH": false, "CONNECT": false,
	} {
		req, _ := http.NewRequest(method, "http://x/", nil)
		assert.Equal(t, want, classify.Idempotent(req), method)
	}
	req, _ := http.NewRequest("POST", "http://x/", nil)
	req.Header.Set("Idempotency-Key", "abc")
	assert.True(t, classify.Idempotent(req))
}

func TestNeverSent(t *testing.T) {
	assert.True(t, classify.NeverSent(classify.ConnectFailure))
	assert.True(t, classify.NeverSent(classify.RefusedStream))
	assert.False(t, classify.NeverSent(classify.Reset))
	assert.Equal(t, "refused-stream", classify.RefusedStream.String())
}

// TestAttemptAsksTheBody: a tracked body whose read failed makes the
// attempt Inbound even when the transport returned an error that wraps
// nothing of it, and a live body leaves the error to Error.
func TestAttemptAsksTheBody(t *testing.T) {
	live := context.Background()
	broken := inbound.Track(io.NopCloser(iotest.ErrReader(errors.New("client went away"))))
	_, err := broken.Read(make([]byte, 8))
	require.Error(t, err)
	opaque := errors.New("net/http: HTTP/1.x transport connection broken: write tcp: broken pipe")
	assert.Equal(t, classify.Inbound, classify.Attempt(live, live, broken, opaque))

	fine := inbound.Track(io.NopCloser(strings.NewReader("ok")))
	assert.Equal(t, classify.Reset, classify.Attempt(live, live, fine, io.ErrUnexpectedEOF))
	assert.Equal(t, classify.Reset, classify.Attempt(live, live, nil, io.ErrUnexpectedEOF))

	done, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Equal(t, classify.Canceled, classify.Attempt(done, done, broken, opaque))
}
