package retry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/outbound-go/outbound/internal/replay"
)

// decision is the policy's answer to "may I retry, and after how long?"
// about one attempt, the same for every call site: the HTTP loop, the
// hedged request, the unary interceptor and the server stream.
//
// When retry is true the retry has already been paid for (the budget
// withdrawn) and, for an HTTP request, the next attempt's body is ready:
// the caller waits delay and sends it, or closes body if it gives up.
// When retry is false the caller ends the request with the attempt's own
// result, except that a budget refusal of an attempt without a response
// answers with err (a *budgetError) instead.
type decision struct {
	retry   bool
	delay   time.Duration // the wait before the next attempt, when retry
	out     outcome       // the attempt's outcome for outbound.retry.attempts
	body    io.ReadCloser // the next attempt's body (HTTP), when retry
	getBody func() (io.ReadCloser, error)
	err     error // the budget refusal, when the attempt has no response to return
}

// decide turns the verdict on an attempt into a decision, in this order:
// the verdict itself, attempts left (used of max_attempts), the next delay
// (the upstream's, or the schedule's, within ctx's deadline), then for an
// HTTP request (src not nil) whether its body can be sent again without
// reading a gRPC stream ahead, and last the retry budget. bo is the
// request's schedule, made on first use. failed is the attempt's error
// when it has no response (nil when it has one): a budget refusal wraps
// it. Only a decision to retry withdraws from the budget or takes a body
// from src.
//
// decide is small enough to inline: an attempt the verdict does not retry
// (the hot path: a success) costs one branch and no call.
func (p *Policy) decide(ctx context.Context, v verdict, used int, bo **backoff.ExponentialBackOff, src *replay.Source, failed error) decision {
	if !v.retry {
		return decision{out: v.out}
	}
	return p.decideRetry(ctx, v, used, bo, src, failed)
}

// decideRetry is decide for an attempt the verdict would retry.
func (p *Policy) decideRetry(ctx context.Context, v verdict, used int, bo **backoff.ExponentialBackOff, src *replay.Source, failed error) decision {
	if used >= p.c.maxAttempts {
		return decision{out: oExhausted}
	}
	delay, ok := p.nextDelay(ctx, bo, v.delay, v.hasDelay)
	if !ok {
		return decision{out: oExhausted}
	}
	d := decision{retry: true, delay: delay, out: oRetried}
	if src != nil {
		if v.grpc && !src.Complete() {
			// A gRPC stream still sending: its sender may be waiting for
			// this very response, so its body is not read ahead.
			return decision{out: oNotRetryable}
		}
		if d.body, d.getBody, ok = src.Next(); !ok {
			return decision{out: oNotRetryable}
		}
	}
	if !p.budget.withdraw() {
		closeBody(d.body)
		d = decision{out: oBudget}
		if failed != nil {
			d.err = &budgetError{last: failed}
		}
	}
	return d
}

// httpResult is what an HTTP request answers with when d is not a retry:
// the attempt's result, the response alone when the budget refused the
// retry of an attempt that has one, else the budget error.
func (d decision) httpResult(resp *http.Response, err error) (*http.Response, error) {
	switch {
	case d.err != nil:
		return nil, d.err
	case d.out == oBudget:
		return resp, nil
	}
	return resp, err
}

// grpcResult is what a gRPC call answers with when d is not a retry: the
// attempt's error, or the budget error that wraps it.
func (d decision) grpcResult(err error) error {
	if d.err != nil {
		return d.err
	}
	return err
}

// noResponse is an HTTP attempt's error when it has no response to return,
// as decide wants it.
func noResponse(resp *http.Response, err error) error {
	if resp != nil {
		return nil
	}
	return err
}

// waitHTTP waits out d's delay before an HTTP retry. If ctx ends first it
// closes the body d prepared and returns the error to answer with.
func (p *Policy) waitHTTP(ctx context.Context, d decision) error {
	serr := p.clock.Sleep(ctx, d.delay)
	if serr == nil {
		return nil
	}
	closeBody(d.body)
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("retry: waiting to retry: %w", cerr)
	}
	return serr
}
