package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/outbound-go/outbound/breaker"
)

// tcpConnect is the outcome of joining one client connection to an
// endpoint: the upstream connection and its slot, or why there is none.
type tcpConnect struct {
	up       net.Conn
	slot     *tcpSlot
	attempts int
	// result is the outbound.tcp.connections result: connected,
	// connect_failed, refused or queued_timeout.
	result string
	err    error
}

// connect picks an endpoint and dials it, trying another endpoint after a
// failed connect (refused, timed out, TLS handshake failed, breaker open)
// up to retry.max_attempts with the retry backoff between attempts. Every
// connect is counted by that endpoint's breaker and recorded in its
// discovery state. Nothing has been read from the client yet, so every
// attempt is safe to make.
func (t *tcpService) connect(ctx context.Context) tcpConnect {
	// Without retry: one attempt.
	once := false
	next := func() (bool, error) {
		ok := !once
		once = true
		return ok, nil
	}
	if p := t.stack.Retry(); p != nil {
		next = p.Connects(ctx).Next
	}
	var (
		tried   []string
		lastErr error
		n       int
	)
	for {
		ok, err := next()
		if err != nil {
			lastErr = err
		}
		if !ok {
			return tcpConnect{attempts: n, result: "connect_failed", err: lastErr}
		}
		n++
		slot, err := t.take(ctx, tried)
		switch {
		case errors.Is(err, errTCPQueueTimeout):
			return tcpConnect{attempts: n, result: "queued_timeout", err: err}
		case err != nil && n > 1 && lastErr != nil && !errors.Is(err, errTCPFull):
			// No endpoint left to retry on: the connects failed.
			return tcpConnect{attempts: n - 1, result: "connect_failed", err: fmt.Errorf("%w (then: %w)", lastErr, err)}
		case err != nil:
			return tcpConnect{attempts: n, result: "refused", err: err}
		}
		tried = append(tried, slot.addr)
		up, err := t.dial(ctx, slot.addr)
		if !errors.Is(err, breaker.ErrOpen) {
			slot.hold.Observe(err)
		}
		if err == nil {
			return tcpConnect{up: up, slot: slot, attempts: n, result: "connected"}
		}
		slot.release()
		lastErr = fmt.Errorf("connect %s: %w", slot.addr, err)
		if ctx.Err() != nil {
			return tcpConnect{attempts: n, result: "connect_failed", err: lastErr}
		}
	}
}

// dial connects to addr through its breaker, when there is one.
func (t *tcpService) dial(ctx context.Context, addr string) (net.Conn, error) {
	b := t.stack.Breaker()
	if b == nil {
		return t.stack.Dial(ctx, addr)
	}
	var up net.Conn
	err := b.Do(addr, func() error {
		var err error
		up, err = t.stack.Dial(ctx, addr)
		return err
	})
	return up, err
}
