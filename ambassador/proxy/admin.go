package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// adminHandler serves /, /healthz, /readyz, /metrics, /status and /config.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /config", s.serveConfig)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("GET /status", s.serveStatus)
	if s.opts.metrics != nil {
		mux.Handle("GET /metrics", s.opts.metrics)
	}
	return mux
}

// NotReady lists what keeps the server from being ready: listeners not
// bound, shutting down (limits.shutdown_delay), draining, services without
// a ready endpoint. Empty means ready.
func (s *Server) NotReady() []string {
	var missing []string
	if !s.bound.Load() {
		missing = append(missing, "listeners: not bound yet")
	}
	if s.shuttingDown.Load() {
		missing = append(missing, "server: shutting down")
	}
	if s.draining.Load() {
		missing = append(missing, "server: draining")
	}
	t := s.table.Load()
	for _, name := range t.order {
		e := t.services[name]
		d := e.discovery()
		if d == nil {
			continue
		}
		eps := d.Endpoints()
		ready := 0
		for _, ep := range eps {
			if ep.Ready {
				ready++
			}
		}
		if ready == 0 {
			missing = append(missing, fmt.Sprintf("services.%s: no ready endpoint (%d known)", name, len(eps)))
		}
	}
	return missing
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	missing := s.NotReady()
	if len(missing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(strings.Join(missing, "\n") + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Status is the document /status serves.
type Status struct {
	Services map[string]ServiceStatus `json:"services"`
	// Process describes the binary and the config in use.
	Process ProcessStatus `json:"process"`
}

// ServiceStatus is one service in Status.
type ServiceStatus struct {
	Endpoints []EndpointStatus `json:"endpoints"`
	// Limiter lists the rate limiter's buckets; absent without ratelimit.
	Limiter []BucketStatus `json:"limiter,omitempty"`
	// InFlight counts the service's requests being proxied now (for a tcp
	// service, its client connections: connecting, queued or open).
	InFlight int64 `json:"in_flight"`
	// Queued counts a tcp service's client connections waiting for a
	// max_connections slot; absent for HTTP services and when none waits.
	Queued int `json:"queued,omitempty"`
}

// EndpointStatus is one endpoint in ServiceStatus.
type EndpointStatus struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	Ready   bool   `json:"ready"`
	// Breaker is closed, open or half_open; absent without breaker.
	Breaker  string  `json:"breaker,omitempty"`
	InFlight int     `json:"in_flight"`
	EWMAms   float64 `json:"ewma_ms"`
	// Requests and Failures count the attempts sent to the endpoint whose
	// outcome was seen, and those that failed (transport error, 5xx, 429,
	// gRPC server-side failure); LastError says why the last failure failed.
	Requests  int64  `json:"requests"`
	Failures  int64  `json:"failures"`
	LastError string `json:"last_error,omitempty"`
}

// BucketStatus is one rate-limit bucket in ServiceStatus.
type BucketStatus struct {
	Key         string     `json:"key"`
	Tokens      float64    `json:"tokens"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
}

// Status returns what /status serves.
func (s *Server) Status() Status {
	t := s.table.Load()
	st := Status{Services: make(map[string]ServiceStatus, len(t.services)), Process: s.processStatus()}
	for name, e := range t.services {
		ss := ServiceStatus{Endpoints: []EndpointStatus{}, InFlight: e.inFlight()}
		if e.tcp != nil {
			ss.Queued = e.tcp.queued()
		}
		if d := e.discovery(); d != nil {
			for _, ep := range d.Endpoints() {
				es := EndpointStatus{
					Address:  ep.Address,
					Weight:   ep.Weight,
					Ready:    ep.Ready,
					InFlight: ep.InFlight,
					EWMAms:   float64(ep.EWMA) / float64(time.Millisecond),
					Requests: ep.Requests, Failures: ep.Failures, LastError: ep.LastError,
				}
				if b := e.breaker(); b != nil {
					es.Breaker = b.State(ep.Address).String()
				}
				ss.Endpoints = append(ss.Endpoints, es)
			}
		}
		if l := e.limiter(); l != nil {
			for _, b := range l.Snapshot() {
				bs := BucketStatus{Key: b.Key, Tokens: b.Tokens}
				if !b.PausedUntil.IsZero() {
					p := b.PausedUntil
					bs.PausedUntil = &p
				}
				ss.Limiter = append(ss.Limiter, bs)
			}
		}
		st.Services[name] = ss
	}
	return st
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Status())
}
