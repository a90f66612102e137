package proxy

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"syscall"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/outbound-go/outbound/internal/boundedfile"
)

// RunReloading runs s as Run does, and reloads its config from the file at
// path (read as LoadConfig reads it, then applied with Reload) on every
// value received from reload (the ambassador passes SIGHUP) and, when watch
// is set, whenever the file itself changes: written in place, renamed over,
// or a Kubernetes ConfigMap's ..data symlink swapped; writes to other files
// of its directory are ignored, and events less than 100ms apart are one
// reload. A change that leaves the file's bytes as they were last tried is
// not reloaded again; a value from reload always reloads. A reload that
// fails is logged and the config in use keeps serving. Each reload is
// counted in outbound.config.reloads by result (success, failure), with
// the WithMeterProvider provider. s must have been built from the file at
// path.
func (s *Server) RunReloading(ctx context.Context, path string, watch bool, reload <-chan os.Signal) error {
	mp := s.opts.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	r, err := newReloader(path, s, s.opts.logger, mp)
	if err != nil {
		return err
	}
	return r.serve(ctx, watch, reload)
}

// reloader re-reads the config file and swaps it into the server, on a
// reload signal and on watched changes, logging and counting each reload in
// outbound.config.reloads by result (success, failure).
//
// A file change (ifChanged) reloads only bytes it has not tried yet: a file
// whose content is the one loaded last, or the one that failed last, is
// skipped, so a touch, a Kubernetes resync or a second event for the same
// bad edit neither reloads nor logs again. SIGHUP always reloads.
//
// It is not safe for concurrent use: RunReloading's loop calls it.
type reloader struct {
	path   string
	srv    *Server
	logger *slog.Logger

	reloads          metric.Int64Counter
	success, failure metric.AddOption

	tried [sha256.Size]byte // content of the last load attempt that read the file
}

// newReloader returns the reloader of srv, whose config (already loaded) is
// the file at path.
func newReloader(path string, srv *Server, logger *slog.Logger, mp metric.MeterProvider) (*reloader, error) {
	reloads, err := mp.Meter("github.com/outbound-go/outbound/ambassador/proxy").Int64Counter(
		"outbound.config.reloads",
		metric.WithDescription("Config reloads (SIGHUP or -watch), by result."))
	if err != nil {
		return nil, err
	}
	r := &reloader{
		path: path, srv: srv, logger: logger, reloads: reloads,
		success: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "success"))),
		failure: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "failure"))),
	}
	if data, err := boundedfile.Read(path, MaxConfigFileSize); err == nil {
		r.tried = sha256.Sum256(data)
	}
	return r, nil
}

// serve runs the server until ctx ends or it fails, reloading on every
// value of hup and, with watch, on changes of the file (see newConfigWatcher).
func (r *reloader) serve(ctx context.Context, watch bool, hup <-chan os.Signal) error {
	var changes <-chan struct{}
	var watchErrs <-chan error
	if watch {
		w, err := newConfigWatcher(r.path)
		if err != nil {
			return err
		}
		defer w.Close()
		changes, watchErrs = w.Changes(), w.Errors()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- r.srv.Run(ctx) }()
	for {
		select {
		case err := <-runErr:
			return err
		case sig := <-hup:
			trigger := sig.String()
			if sig == syscall.SIGHUP {
				trigger = "SIGHUP" // as the ambassador's logs have always said
			}
			r.reload(ctx, trigger, false)
		case <-changes:
			r.reload(ctx, "file change", true)
		case err := <-watchErrs:
			r.logger.Warn("ambassador: -watch", "path", r.path, "err", err)
		}
	}
}

// reload loads the file and applies it; trigger names the cause in the log.
func (r *reloader) reload(ctx context.Context, trigger string, ifChanged bool) {
	data, err := boundedfile.Read(r.path, MaxConfigFileSize)
	if err == nil {
		sum := sha256.Sum256(data)
		if ifChanged && sum == r.tried {
			return
		}
		r.tried = sum
		err = r.apply()
	}
	if err != nil {
		r.reloads.Add(ctx, 1, r.failure)
		r.logger.Error("reload failed; the old config keeps serving", "trigger", trigger, "error", err.Error())
		return
	}
	r.reloads.Add(ctx, 1, r.success)
	r.logger.Info("config reloaded", "trigger", trigger)
}

// apply loads the file (again: LoadConfig also reads the files it names)
// and swaps it in.
func (r *reloader) apply() error {
	c, err := LoadConfig(r.path)
	if err != nil {
		return err
	}
	return r.srv.Reload(c)
}
