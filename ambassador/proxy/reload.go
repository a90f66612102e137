package main

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/boundedfile"
)

// reloader re-reads the config file and swaps it into the server, on SIGHUP
// and on -watch changes, logging and counting each reload in
// outbound.config.reloads by result (success, failure).
//
// A file change (ifChanged) reloads only bytes it has not tried yet: a file
// whose content is the one loaded last, or the one that failed last, is
// skipped, so a touch, a Kubernetes resync or a second event for the same
// bad edit neither reloads nor logs again. SIGHUP always reloads.
//
// It is not safe for concurrent use: run's loop calls it.
type reloader struct {
	path   string
	srv    *proxy.Server
	logger *slog.Logger

	reloads          metric.Int64Counter
	success, failure metric.AddOption

	tried [sha256.Size]byte // content of the last load attempt that read the file
}

// newReloader returns the reloader of srv, whose config (already loaded) is
// the file at path.
func newReloader(path string, srv *proxy.Server, logger *slog.Logger, mp metric.MeterProvider) (*reloader, error) {
	reloads, err := mp.Meter("github.com/outbound-go/outbound/examples/ambassador").Int64Counter(
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
	if data, err := boundedfile.Read(path, proxy.MaxConfigFileSize); err == nil {
		r.tried = sha256.Sum256(data)
	}
	return r, nil
}

// serve runs the server until ctx ends or it fails, reloading on SIGHUP
// and, with watch, on changes of the file (see configWatcher).
func (r *reloader) serve(ctx context.Context, watch bool) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var changes <-chan struct{}
	if watch {
		w, err := newConfigWatcher(r.path)
		if err != nil {
			return err
		}
		defer w.Close()
		changes = w.Changes()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- r.srv.Run(ctx) }()
	for {
		select {
		case err := <-runErr:
			return err
		case <-hup:
			r.reload(ctx, "SIGHUP", false)
		case <-changes:
			r.reload(ctx, "file change", true)
		}
	}
}

// reload loads the file and applies it; trigger names the cause in the log.
func (r *reloader) reload(ctx context.Context, trigger string, ifChanged bool) {
	data, err := boundedfile.Read(r.path, proxy.MaxConfigFileSize)
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
	c, err := proxy.LoadConfig(r.path)
	if err != nil {
		return err
	}
	return r.srv.Reload(c)
}
