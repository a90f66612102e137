package retry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/refusal"
	"github.com/outbound-go/outbound/internal/replay"
	"github.com/outbound-go/outbound/internal/retryafter"
)

// ErrBudgetExhausted is matched (errors.Is) by the error returned when a
// retry was needed but the retry budget was spent and no response exists to
// return instead. The error also wraps the last attempt's error; from the
// gRPC interceptors it keeps that attempt's status (status.Code still says
// UNAVAILABLE, say).
var ErrBudgetExhausted = refusal.New("retry: budget exhausted")

// budgetError is the last attempt's error, marked as a budget refusal.
type budgetError struct{ last error }

func (e *budgetError) Error() string   { return ErrBudgetExhausted.Error() + ": " + e.last.Error() }
func (e *budgetError) Unwrap() []error { return []error{ErrBudgetExhausted, e.last} }

// GRPCStatus keeps the last attempt's gRPC status.
func (e *budgetError) GRPCStatus() *status.Status { return status.Convert(e.last) }

// drainLimit bounds how much of a discarded response body is read so that
// its connection can be reused.
const drainLimit = 64 << 10

// RoundTripper returns next wrapped with the policy. A nil next means
// http.DefaultTransport.
func (p *Policy) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{p: p, next: next, rewrites: attempt.RewritesURL(next)}
}

type transport struct {
	p    *Policy
	next http.RoundTripper
	// rewrites says a layer below may rewrite an attempt's URL in place
	// (attempt.RewritesURL): only then does the call state carry URL
	// storage of its own.
	rewrites bool
}

var _ http.RoundTripper = (*transport)(nil)

// verdict is what the policy makes of one attempt's result.
type verdict struct {
	retry    bool
	grpc     bool    // decided by the gRPC trailers-only rule
	out      outcome // when !retry: oSuccess or oNotRetryable
	delay    time.Duration
	hasDelay bool // the upstream named the delay (Retry-After, pushback)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.RoundTripContext(req.Context(), req, time.Time{}, nil)
}

// RoundTripContext is RoundTrip with ctx in place of req.Context(): every
// attempt is sent under a child of ctx. The ambassador's Stack calls it to
// bound the request by its timeout without a request copy of its own (the
// attempts are copies anyway). It is not part of the public API: the type
// is unexported; it satisfies attempt.ContextRoundTripper. now, when not
// zero, is the caller's fresh reading of the real clock; call, when not
// nil, is call state the caller allocated for this request.
func (t *transport) RoundTripContext(ctx context.Context, req *http.Request, now time.Time, call *attempt.HTTPCall) (*http.Response, error) {
	p := t.p
	adopt, _ := attempt.FromContext(ctx)
	idem := classify.Idempotent(req)
	tr := newRequestTrailer(req) // before any attempt reads the body
	src, body := replay.Prepare(req, p.c.maxBody)
	defer src.Release()
	now = p.deposit(now)
	if p.c.hedgeDelay > 0 && idem {
		rec := adopt
		if rec == nil {
			rec = attempt.NewRecord()
		}
		return t.hedged(ctx, req, rec, src, body, tr)
	}
	switch {
	case call == nil && t.rewrites:
		call = attempt.NewHTTPCall(ctx, adopt)
	case call == nil:
		call = attempt.NewHTTPCallSharedURL(ctx, adopt)
	default:
		call.Init(ctx, adopt)
	}
	rec := call.Record()

	getBody := req.GetBody
	var bo *backoff.ExponentialBackOff
	for {
		n := rec.Start()
		if n > 1 && p.real {
			now = time.Now()
		}
		actx, resp, err := t.try(ctx, call, req, rec, n, body, getBody, now, tr)
		v := p.judgeHTTP(ctx, actx, req, body, idem, resp, err)
		d := p.decide(ctx, v, n, &bo, &src, noResponse(resp, err))
		p.count(ctx, d.out)
		if !d.retry {
			return d.httpResult(resp, err)
		}
		discard(resp)
		p.debug(ctx, "retrying request", "attempt", n, "delay", d.delay, "error", err)
		if werr := p.waitHTTP(ctx, d); werr != nil {
			return nil, werr
		}
		body, getBody = d.body, d.getBody
	}
}

// try sends one attempt: a shallow copy of req owned by the call (layers
// below may rewrite its URL in place), under the attempt's context. With a
// per-try timeout the attempt gets its own cancellable context and a timer
// that is stopped as soon as the response headers arrive; the context is
// then cancelled only when the body is closed, so the timer never cuts a
// body read. With a tracer each attempt is a child span.
func (t *transport) try(ctx context.Context, call *attempt.HTTPCall, req *http.Request, rec *attempt.Record, n int, body io.ReadCloser, getBody func() (io.ReadCloser, error), now time.Time, tr *requestTrailer) (context.Context, *http.Response, error) {
	perTry := t.p.c.perTry
	if perTry <= 0 && t.p.tracer == nil {
		r2 := call.Request(req, n)
		call.SetNow(now) // zero unless on the real clock
		r2.Body, r2.GetBody = body, getBody
		tr.apply(r2)
		resp, err := t.next.RoundTrip(r2)
		t.p.event(ctx, nil, n, rec, req, err)
		return r2.Context(), resp, err
	}
	actx, span := t.p.startSpan(call.Attempt(n), n)
	if perTry <= 0 {
		r2 := req.WithContext(actx)
		r2.Body, r2.GetBody = body, getBody
		tr.apply(r2)
		resp, err := t.next.RoundTrip(r2)
		t.p.event(ctx, span, n, rec, req, err)
		return actx, resp, err
	}
	cctx, cancel := context.WithCancelCause(actx)
	timer := time.AfterFunc(perTry, func() { cancel(classify.ErrPerTryTimeout) })
	r2 := req.WithContext(cctx)
	r2.Body, r2.GetBody = body, getBody
	tr.apply(r2)
	resp, err := t.next.RoundTrip(r2)
	fired := !timer.Stop()
	if err == nil && fired {
		// The timer fired as the headers arrived: the body is already
		// bound to a cancelled context.
		discard(resp)
		resp, err = nil, fmt.Errorf("retry: attempt %d: %w", n, classify.ErrPerTryTimeout)
	}
	t.p.event(ctx, span, n, rec, req, err)
	if err != nil {
		cancel(nil)
		return cctx, nil, err
	}
	resp.Body = cancelOnClose(resp.Body, func() { cancel(nil) })
	return cctx, resp, nil
}

// judgeHTTP decides whether one attempt's result is retried. body is the
// body the attempt sent: an attempt that failed because reading the
// caller's body failed is never retried (classify.Inbound).
func (p *Policy) judgeHTTP(ctx, actx context.Context, req *http.Request, body io.ReadCloser, idem bool, resp *http.Response, err error) verdict {
	notRetryable := verdict{out: oNotRetryable}
	if err != nil {
		k := classify.Attempt(ctx, actx, body, err)
		var cond conditions
		switch k {
		case classify.ConnectFailure:
			cond = condConnect
		case classify.RefusedStream:
			cond = condRefused
		case classify.Reset:
			cond = condReset
		case classify.Timeout:
			cond = 0 // a per-try timeout is retried whatever retry_on says
		default:
			return notRetryable
		}
		if cond != 0 && p.c.on&cond == 0 {
			return notRetryable
		}
		if !idem && !p.c.nonIdempotent && !classify.NeverSent(k) {
			return notRetryable
		}
		return verdict{retry: true}
	}
	if resp == nil {
		return notRetryable // a RoundTripper broke its contract
	}
	if v, ok := p.judgeGRPCResponse(resp); ok {
		return v
	}
	if !p.retriableStatus(resp.StatusCode) {
		return verdict{out: oSuccess}
	}
	if !idem && !p.c.nonIdempotent {
		return notRetryable
	}
	if d, ok := retryafter.FromResponse(resp, p.clock.Now()); ok {
		if d > p.c.maxRetryAfter {
			return notRetryable
		}
		return verdict{retry: true, delay: d, hasDelay: true}
	}
	return verdict{retry: true}
}

// judgeGRPCResponse applies the gRPC rule to a gRPC-over-HTTP/2 response: a
// trailers-only answer (Grpc-Status in the headers) with a code in
// retriable_grpc_codes is retried, honouring grpc-retry-pushback-ms; a
// response whose stream has begun is never retried. ok is false for a
// response that is not gRPC.
func (p *Policy) judgeGRPCResponse(resp *http.Response) (verdict, bool) {
	code, isGRPC, ok := classify.GRPCHeaderStatus(resp.Header)
	if !isGRPC {
		return verdict{}, false
	}
	if !ok || code == codes.OK {
		return verdict{out: oSuccess}, true
	}
	if !p.retriableCode(code) {
		return verdict{out: oNotRetryable}, true
	}
	if vs := resp.Header["Grpc-Retry-Pushback-Ms"]; len(vs) > 0 {
		d, ok := pushback(vs[0])
		if !ok || d > p.c.maxRetryAfter {
			return verdict{out: oNotRetryable}, true
		}
		return verdict{retry: true, grpc: true, delay: d, hasDelay: true}, true
	}
	return verdict{retry: true, grpc: true}, true
}

func (p *Policy) retriableStatus(code int) bool {
	on := p.c.on
	switch {
	case on&condGateway != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case on&cond5xx != 0 && code >= 500 && code <= 599:
		return true
	case on&condStatus != 0:
		for _, c := range p.c.statusCodes {
			if c == code {
				return true
			}
		}
	}
	return false
}

// discard drains a response body (bounded) and closes it so that its
// connection can be reused.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// cancelOnClose wraps a response body so that closing it also runs cancel.
// A body that is also an io.Writer (101 Switching Protocols) stays one.
func cancelOnClose(body io.ReadCloser, cancel func()) io.ReadCloser {
	if body == nil {
		cancel()
		return nil
	}
	if rwc, ok := body.(io.ReadWriteCloser); ok {
		return &cancelRWC{cancelBody{ReadCloser: rwc, cancel: cancel}, rwc}
	}
	return &cancelBody{ReadCloser: body, cancel: cancel}
}

type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

type cancelRWC struct {
	cancelBody
	w io.Writer
}

func (b *cancelRWC) Write(p []byte) (int, error) { return b.w.Write(p) }

// errAttemptLost is the cancellation cause of a hedged attempt that lost.
// It wraps context.Canceled: the loser was cancelled by its caller (this
// layer), so the layers below (the breaker's DefaultClassifier, a custom
// classifier with errors.Is) do not take the cancellation, which net/http
// reports as this cause, for the endpoint's failure.
var errAttemptLost = fmt.Errorf("retry: another attempt won: %w", context.Canceled)

var _ attempt.ContextRoundTripper = (*transport)(nil)
