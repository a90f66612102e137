package discovery

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"
)

// Hold is an endpoint picked for a long-lived use, such as a TCP
// connection the ambassador's tcp listener joins to it: from PickHold to
// Release it counts as one request in flight (least_request balances on
// it, Endpoints reports it as InFlight), however long that is. Observe
// records the outcome of connecting, as an attempt's outcome is recorded
// for HTTP. A Hold is used by one goroutine at a time.
type Hold struct {
	ep       *endpoint
	start    int64
	released atomic.Bool
}

// PickHold picks an endpoint as Pick does (avoiding those the attempt
// record in ctx already tried, skipping unready ones, recording the pick)
// and counts it in flight until the Hold's Release. With no ready
// endpoint it returns a *NoEndpointsError.
func (s *Service) PickHold(ctx context.Context) (*Hold, error) {
	rec, _ := attempt.FromContext(ctx)
	ep, err := s.pick(ctx, rec)
	if err != nil {
		return nil, err
	}
	ep.inflight.Add(1)
	return &Hold{ep: ep, start: monoNow()}, nil
}

// Address returns the held endpoint's host:port.
func (h *Hold) Address() string { return h.ep.addr }

// Observe records the outcome of connecting to the endpoint: the time
// since PickHold as its latency, and err, when not nil and not the
// caller's cancellation (context.Canceled), as a failure (Endpoints'
// Failures and LastError, and the ewma balancer's penalty). Call it once,
// when the connect succeeded or failed.
func (h *Hold) Observe(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	now := monoNow()
	h.ep.observeAt(now, time.Duration(now-h.start), err != nil)
	if err != nil {
		h.ep.failedWith(err.Error())
	}
}

// Release ends the hold: the endpoint has one request less in flight. It
// is safe to call more than once; only the first call counts.
func (h *Hold) Release() {
	if h.released.CompareAndSwap(false, true) {
		h.ep.inflight.Add(-1)
	}
}
