package retry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/replay"
)

// hedgeResult is one finished attempt of a hedged request.
type hedgeResult struct {
	resp   *http.Response
	err    error
	body   io.ReadCloser // the body the attempt sent
	n      int
	hedge  bool
	ctx    context.Context
	cancel context.CancelCauseFunc
	span   trace.Span
}

// running is an attempt of a hedged request still in flight.
type running struct {
	n      int
	cancel context.CancelCauseFunc
	hedge  bool
}

// maxInflight bounds the attempts of a hedged request in flight at once:
// the original (or a retry, started only when nothing is in flight) and at
// most MaxHedgeExtra hedges. A fixed array of them keeps the hedging value
// free of allocations of its own.
const maxInflight = 1 + MaxHedgeExtra

// hedging is one hedged request: an idempotent request whose attempts may
// overlap. Every attempt has its own cancellable context, a child of the
// caller's: cancelling a loser never touches the winner, whose context is
// cancelled only when the caller closes its body.
//
// A hedging is owned by the goroutine running run: only it reads or
// changes the fields. Each attempt's goroutine sends its hedgeResult on
// results (buffered for every attempt the request may start) and touches
// nothing else.
type hedging struct {
	t        *transport
	p        *Policy
	ctx      context.Context
	req      *http.Request
	rec      *attempt.Record
	src      replay.Source
	results  chan hedgeResult
	inflight [maxInflight]running // the first ninflight are in flight
	nflight  int
	sent     int // attempts that were not hedges
	hedges   int // hedges since the last attempt that was not one
	timer    *time.Timer
	tr       *requestTrailer // each attempt's own Trailer (trailer.go); nil without
	bo       *backoff.ExponentialBackOff
}

// hedged runs an idempotent request with hedging.
func (t *transport) hedged(ctx context.Context, req *http.Request, rec *attempt.Record, src replay.Source, body io.ReadCloser, tr *requestTrailer) (*http.Response, error) {
	p := t.p
	h := hedging{
		t: t, p: p, ctx: ctx, req: req, rec: rec, src: src, tr: tr,
		results: make(chan hedgeResult, p.c.maxAttempts+p.c.hedgeMax),
	}
	h.start(body, req.GetBody, false)
	h.sent = 1
	h.timer = time.NewTimer(p.c.hedgeDelay)
	defer h.timer.Stop()
	return h.run()
}

// run waits for the caller to give up, the hedge timer, or an attempt's
// result, until the request has its answer.
func (h *hedging) run() (*http.Response, error) {
	for {
		var hc <-chan time.Time
		if h.hedges < h.p.c.hedgeMax && h.nflight > 0 {
			hc = h.timer.C
		}
		select {
		case <-h.ctx.Done():
			return h.cancelled()
		case <-hc:
			h.hedge()
		case r := <-h.results:
			if done, resp, err := h.result(r); done {
				return resp, err
			}
		}
	}
}

// start sends attempt rec.Start() with body b in a goroutine of its own,
// under a per-try timeout if there is one.
func (h *hedging) start(b io.ReadCloser, gb func() (io.ReadCloser, error), hedge bool) {
	p := h.p
	n := h.rec.Start()
	actx, cancel := context.WithCancelCause(attempt.WithAttempt(h.ctx, h.rec, n))
	sctx, span := p.startSpan(actx, n)
	h.inflight[h.nflight] = running{n: n, cancel: cancel, hedge: hedge}
	h.nflight++
	r2 := h.req.WithContext(sctx)
	r2.Body, r2.GetBody = b, gb
	h.tr.apply(r2)
	var timer *time.Timer
	if p.c.perTry > 0 {
		timer = time.AfterFunc(p.c.perTry, func() { cancel(classify.ErrPerTryTimeout) })
	}
	t, results := h.t, h.results
	go func() {
		resp, err := t.next.RoundTrip(r2)
		if timer != nil && !timer.Stop() && err == nil {
			discard(resp)
			resp, err = nil, fmt.Errorf("retry: attempt %d: %w", n, classify.ErrPerTryTimeout)
		}
		results <- hedgeResult{resp: resp, err: err, body: b, n: n, hedge: hedge, ctx: actx, cancel: cancel, span: span}
	}()
}

// hedge starts another copy of the request when its body can be sent
// again and the budget allows; otherwise no more hedges are sent until the
// next retry, and the attempts in flight go on.
func (h *hedging) hedge() {
	nb, ngb, ok := h.src.Next()
	if !ok || !h.p.budget.withdraw() {
		closeBody(nb)
		h.hedges = h.p.c.hedgeMax
		return
	}
	h.hedges++
	h.start(nb, ngb, true)
	h.timer.Reset(h.p.c.hedgeDelay)
}

// cancelled ends the request when the caller gave up: every attempt in
// flight is counted and abandoned.
func (h *hedging) cancelled() (*http.Response, error) {
	for _, a := range h.running() {
		if a.hedge {
			h.p.count(h.ctx, oHedged)
		} else {
			h.p.count(h.ctx, oNotRetryable)
		}
	}
	h.abandon()
	return nil, fmt.Errorf("retry: %w", h.ctx.Err())
}

// result takes one finished attempt. done says the request has its answer
// (resp, err): this attempt won, or it was the last and may not be
// retried. Otherwise another attempt is running or was started.
func (h *hedging) result(r hedgeResult) (done bool, resp *http.Response, err error) {
	p := h.p
	h.done(r.n)
	p.event(h.ctx, r.span, r.n, h.rec, h.req, r.err)
	v := p.judgeHTTP(h.ctx, r.ctx, h.req, r.body, true, r.resp, r.err)
	if !v.retry && (r.err == nil || h.nflight == 0) {
		resp, err = h.win(r, v.out)
		return true, resp, err
	}
	if h.nflight > 0 {
		// Another copy is still running: wait for it.
		h.count(r, oRetried)
		discard(r.resp)
		r.cancel(nil)
		return false, nil, nil
	}
	// Nothing in flight: retry as an unhedged request would.
	return h.retry(r, v)
}

// win returns r as the answer; the attempts still in flight lose.
func (h *hedging) win(r hedgeResult, out outcome) (*http.Response, error) {
	h.count(r, out)
	for _, a := range h.running() {
		if a.hedge {
			h.p.count(h.ctx, oHedged)
		} else {
			h.p.count(h.ctx, oRetried) // it lost: another attempt answered
		}
	}
	h.abandon()
	return finish(r)
}

// retry decides about r, the last attempt in flight, as an unhedged
// request would, and starts the next attempt if the decision says so.
func (h *hedging) retry(r hedgeResult, v verdict) (done bool, resp *http.Response, err error) {
	p := h.p
	d := p.decide(h.ctx, v, h.sent, &h.bo, &h.src, noResponse(r.resp, r.err))
	h.count(r, d.out)
	if !d.retry {
		if d.err != nil {
			r.cancel(nil)
			return true, nil, d.err
		}
		resp, err = finish(r)
		return true, resp, err
	}
	discard(r.resp)
	r.cancel(nil)
	if err := p.waitHTTP(h.ctx, d); err != nil {
		return true, nil, err
	}
	h.sent++
	h.hedges = 0
	h.start(d.body, d.getBody, false)
	h.timer.Reset(p.c.hedgeDelay)
	return false, nil, nil
}

// running returns the attempts in flight.
func (h *hedging) running() []running { return h.inflight[:h.nflight] }

// done takes attempt n off the attempts in flight.
func (h *hedging) done(n int) {
	for i := range h.nflight {
		if h.inflight[i].n == n {
			h.nflight--
			h.inflight[i] = h.inflight[h.nflight]
			h.inflight[h.nflight] = running{}
			return
		}
	}
}

// count counts r's outcome: a hedge is counted as hedged whatever became
// of it.
func (h *hedging) count(r hedgeResult, o outcome) {
	if r.hedge {
		o = oHedged
	}
	h.p.count(h.ctx, o)
}

// abandon cancels every attempt still in flight and reaps them in the
// background: their responses are drained and closed.
func (h *hedging) abandon() {
	for _, a := range h.running() {
		a.cancel(errAttemptLost)
	}
	k := h.nflight
	if k == 0 {
		return
	}
	p, ctx, rec, req, results := h.p, h.ctx, h.rec, h.req, h.results
	go func() {
		for range k {
			r := <-results
			p.event(ctx, r.span, r.n, rec, req, r.err)
			discard(r.resp)
			r.cancel(nil)
		}
	}()
}

// finish returns a result as the final answer, its context cancelled when
// the caller closes the body.
func finish(r hedgeResult) (*http.Response, error) {
	if r.err != nil {
		r.cancel(nil)
		return nil, r.err
	}
	r.resp.Body = cancelOnClose(r.resp.Body, func() { r.cancel(nil) })
	return r.resp, nil
}
