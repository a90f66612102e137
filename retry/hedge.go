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

// hedged runs an idempotent request with hedging. Every attempt has its own
// cancellable context, a child of the caller's: cancelling a loser never
// touches the winner, whose context is cancelled only when the caller
// closes its body.
func (t *transport) hedged(ctx context.Context, req *http.Request, rec *attempt.Record, src replay.Source, body io.ReadCloser) (*http.Response, error) {
	p := t.p
	results := make(chan hedgeResult, p.c.maxAttempts+p.c.hedgeMax)
	type running struct {
		cancel context.CancelCauseFunc
		hedge  bool
	}
	inflight := map[int]running{}

	start := func(b io.ReadCloser, gb func() (io.ReadCloser, error), hedge bool) {
		n := rec.Start()
		actx, cancel := context.WithCancelCause(attempt.WithAttempt(ctx, rec, n))
		sctx, span := p.startSpan(actx, n)
		inflight[n] = running{cancel: cancel, hedge: hedge}
		r2 := req.WithContext(sctx)
		r2.Body, r2.GetBody = b, gb
		var timer *time.Timer
		if p.c.perTry > 0 {
			timer = time.AfterFunc(p.c.perTry, func() { cancel(classify.ErrPerTryTimeout) })
		}
		go func() {
			resp, err := t.next.RoundTrip(r2)
			if timer != nil && !timer.Stop() && err == nil {
				discard(resp)
				resp, err = nil, fmt.Errorf("retry: attempt %d: %w", n, classify.ErrPerTryTimeout)
			}
			results <- hedgeResult{resp: resp, err: err, body: b, n: n, hedge: hedge, ctx: actx, cancel: cancel, span: span}
		}()
	}
	// abandon cancels every attempt still in flight and reaps them in the
	// background: their responses are drained and closed.
	abandon := func() {
		for _, a := range inflight {
			a.cancel(errAttemptLost)
		}
		if k := len(inflight); k > 0 {
			go func() {
				for range k {
					r := <-results
					p.event(ctx, r.span, r.n, rec, req, r.err)
					discard(r.resp)
					r.cancel(nil)
				}
			}()
		}
	}

	start(body, req.GetBody, false)
	sent := 1 // attempts that were not hedges
	hedges := 0
	hedgeTimer := time.NewTimer(p.c.hedgeDelay)
	defer hedgeTimer.Stop()
	var bo *backoff.ExponentialBackOff
	for {
		var hc <-chan time.Time
		if hedges < p.c.hedgeMax && len(inflight) > 0 {
			hc = hedgeTimer.C
		}
		select {
		case <-ctx.Done():
			for _, a := range inflight {
				if a.hedge {
					p.count(ctx, oHedged)
				} else {
					p.count(ctx, oNotRetryable)
				}
			}
			abandon()
			return nil, fmt.Errorf("retry: %w", ctx.Err())

		case <-hc:
			nb, ngb, ok := src.Next()
			if !ok || !p.budget.withdraw() {
				closeBody(nb)
				hedges = p.c.hedgeMax // no more hedges; attempts in flight go on
				continue
			}
			hedges++
			start(nb, ngb, true)
			hedgeTimer.Reset(p.c.hedgeDelay)

		case r := <-results:
			delete(inflight, r.n)
			p.event(ctx, r.span, r.n, rec, req, r.err)
			v := p.judgeHTTP(ctx, r.ctx, req, r.body, true, r.resp, r.err)
			attemptOutcome := func(o outcome) outcome {
				if r.hedge {
					return oHedged
				}
				return o
			}
			if !v.retry && (r.err == nil || len(inflight) == 0) {
				// The winner: the others lose.
				p.count(ctx, attemptOutcome(v.out))
				for _, a := range inflight {
					if a.hedge {
						p.count(ctx, oHedged)
					} else {
						p.count(ctx, oRetried) // it lost: another attempt answered
					}
				}
				abandon()
				if r.err != nil {
					r.cancel(nil)
					return nil, r.err
				}
				r.resp.Body = cancelOnClose(r.resp.Body, func() { r.cancel(nil) })
				return r.resp, nil
			}
			if len(inflight) > 0 {
				// Another copy is still running: wait for it.
				p.count(ctx, attemptOutcome(oRetried))
				discard(r.resp)
				r.cancel(nil)
				continue
			}
			// Nothing in flight: retry as an unhedged request would.
			if sent >= p.c.maxAttempts {
				p.count(ctx, attemptOutcome(oExhausted))
				return t.finish(r)
			}
			delay, ok := p.nextDelay(ctx, &bo, v.delay, v.hasDelay)
			if !ok {
				p.count(ctx, attemptOutcome(oExhausted))
				return t.finish(r)
			}
			if v.grpc && !src.Complete() {
				p.count(ctx, attemptOutcome(oNotRetryable))
				return t.finish(r)
			}
			nb, ngb, ok := src.Next()
			if !ok {
				p.count(ctx, attemptOutcome(oNotRetryable))
				return t.finish(r)
			}
			if !p.budget.withdraw() {
				closeBody(nb)
				p.count(ctx, attemptOutcome(oBudget))
				if r.resp != nil {
					return t.finish(r)
				}
				r.cancel(nil)
				return nil, &budgetError{last: r.err}
			}
			p.count(ctx, attemptOutcome(oRetried))
			discard(r.resp)
			r.cancel(nil)
			if err := p.clock.Sleep(ctx, delay); err != nil {
				closeBody(nb)
				if cerr := ctx.Err(); cerr != nil {
					return nil, fmt.Errorf("retry: waiting to retry: %w", cerr)
				}
				return nil, err
			}
			sent++
			hedges = 0
			start(nb, ngb, false)
			hedgeTimer.Reset(p.c.hedgeDelay)
		}
	}
}

// finish returns a result as the final answer, its context cancelled when
// the caller closes the body.
func (t *transport) finish(r hedgeResult) (*http.Response, error) {
	if r.err != nil {
		r.cancel(nil)
		return nil, r.err
	}
	r.resp.Body = cancelOnClose(r.resp.Body, func() { r.cancel(nil) })
	return r.resp, nil
}
