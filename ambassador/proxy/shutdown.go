package proxy

import (
	"time"
)

// EndShutdownDelay ends limits.shutdown_delay at once: a Run whose context
// is done stops accepting and drains now instead of when the delay ends.
// Called before the context is done, it makes Run skip the delay. The
// ambassador calls it on a second SIGTERM or SIGINT. It is safe to call
// more than once and from any goroutine.
func (s *Server) EndShutdownDelay() {
	s.endDelayOnce.Do(func() { close(s.endDelay) })
}

// delayShutdown marks the server as shutting down (/readyz answers 503)
// and keeps serving for d, or until EndShutdownDelay is called or a
// listener fails, whose error it returns.
func (s *Server) delayShutdown(d time.Duration, errc <-chan error) error {
	s.shuttingDown.Store(true)
	if d <= 0 {
		return nil
	}
	s.opts.logger.Info("shutting down: still serving, /readyz answers 503", "shutdown_delay", d.String())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.endDelay:
		s.opts.logger.Info("shutdown delay ended early")
	case err := <-errc:
		return err
	}
	return nil
}
