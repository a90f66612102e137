package discovery

import (
	"context"
	"io"
	"net/http"
	"sync"
)

// maxConcurrentChecks bounds the health checks one round runs at a time.
const maxConcurrentChecks = 8

// runHealthChecks is the Service's one health-check goroutine: a round of
// checks at once, then one every interval (measured from the start of the
// previous round; at once if a round took longer) on the Service's clock,
// until ctx is done.
func (s *Service) runHealthChecks(ctx context.Context) {
	iv := s.cfg.HealthCheck.Interval
	for {
		start := s.clock.Now()
		s.checkRound(ctx)
		if s.clock.Sleep(ctx, iv-s.clock.Now().Sub(start)) != nil {
			return
		}
	}
}

// checkRound checks every endpoint of the current set once, with at most
// maxConcurrentChecks workers, and returns when all are done.
func (s *Service) checkRound(ctx context.Context) {
	snap := s.snap.Load()
	if snap == nil || len(snap.members) == 0 {
		return
	}
	next := make(chan *endpoint)
	var wg sync.WaitGroup
	for w := 0; w < min(maxConcurrentChecks, len(snap.members)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ep := range next {
				s.checkOne(ctx, ep)
			}
		}()
	}
feed:
	for i := range snap.members {
		select {
		case next <- snap.members[i].ep:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}

// checkOne GETs http://<endpoint><path>; a 2xx or 3xx within the timeout
// passes. One failure takes the endpoint out of the pick set, one pass puts
// it back.
func (s *Service) checkOne(ctx context.Context, ep *endpoint) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.HealthCheck.Timeout)
	defer cancel()
	ok, reason := false, ""
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+ep.addr+s.cfg.HealthCheck.Path, nil)
	if err == nil {
		var resp *http.Response
		resp, err = s.checkClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			ok = resp.StatusCode >= 200 && resp.StatusCode < 400
			reason = resp.Status
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the endpoint's fault
		}
		reason = err.Error()
	}
	if !ok {
		if !ep.unhealthy.Swap(true) {
			s.log.Warn("discovery: endpoint failed its health check; out of the pick set",
				"endpoint", ep.addr, "reason", reason)
		}
		return
	}
	if ep.unhealthy.Swap(false) {
		s.log.Info("discovery: endpoint passed its health check; back in the pick set", "endpoint", ep.addr)
	}
}
