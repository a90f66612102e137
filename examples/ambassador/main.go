// Command ambassador runs the outbound ambassador: a localhost reverse proxy
// that applies retry, rate limiting, discovery and circuit breaking to every
// request it forwards.
//
//	ambassador [-config FILE] [-check] [-log-format text|json] [-watch] [-version]
//	           [-access-log off|stdout|stderr|FILE]
//
// -version prints "ambassador <module version> <go version>" and exits 0;
// a build from a checkout shows v0.0.0-devel+<revision> as its version.
// -access-log sends the one-line-per-request access log elsewhere than the
// process log on stderr (the default): nowhere, stdout, or FILE, opened
// append-only and created 0644, in the -log-format of the process log.
//
// Without -config it runs the embedded demo. Exit codes: 0 clean shutdown,
// 1 runtime failure, 2 bad flags or config. SIGTERM/SIGINT drain and exit
// (after limits.shutdown_delay, which a second SIGTERM/SIGINT cuts short);
// SIGHUP reloads the config, and so, with -watch, does a change of FILE
// itself (written in place, renamed over, or a Kubernetes ConfigMap's ..data
// symlink swapped), not of other files in its directory; events less than
// 100ms apart are one reload. /metrics counts reloads by result in
// outbound_config_reloads_total.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// usageError marks bad flags or config: exit code 2.
type usageError struct{ error }

func main() {
	fs := flag.NewFlagSet("ambassador", flag.ContinueOnError)
	configPath := fs.String("config", "", "config `FILE`; without it the embedded demo runs")
	check := fs.Bool("check", false, "validate the config FILE, print every problem and exit (2 if any)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	watch := fs.Bool("watch", false, "reload the config when FILE itself changes (as on SIGHUP; events under 100ms apart are one reload)")
	version := fs.Bool("version", false, "print \"ambassador <module version> <go version>\" and exit")
	accessLog := fs.String("access-log", "stderr", "where the access log goes: off, stdout, stderr (with the process log) or a `FILE` (appended to)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback `host:port` (off by default; for profiling only)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	setGCPercent()
	setMaxProcs()
	err := run(context.Background(), flags{config: *configPath, check: *check, logFormat: *logFormat,
		watch: *watch, pprof: *pprofAddr, version: *version, accessLog: *accessLog, args: fs.Args()}, os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "ambassador:", err)
		os.Exit(1)
	}
}

// flags are the command line's settings.
type flags struct {
	config, logFormat, pprof, accessLog string
	check, watch, version               bool
	args                                []string // what follows the flags: nothing is expected
}

// run is the whole process; main only maps its error to the exit code, so
// everything run starts (pprof, the log writer, the meter provider) is
// stopped by its own defers before the process exits.
func run(ctx context.Context, f flags, stdout, stderr io.Writer) error {
	configPath, check, logFormat := f.config, f.check, f.logFormat
	if len(f.args) > 0 {
		// "ambassador ambassador.yaml" would otherwise run the demo.
		return usageError{fmt.Errorf("unexpected argument %q: the config file is given as -config FILE", f.args[0])}
	}
	if f.version {
		fmt.Fprintln(stdout, proxy.Version())
		return nil
	}
	if f.pprof != "" {
		stopPprof, err := servePprof(f.pprof)
		if err != nil {
			return usageError{err}
		}
		defer stopPprof()
	}
	// Log lines (one per request) are written by a background goroutine,
	// many per system call under load; what is pending is written on return.
	lw := newLogWriter(stderr)
	defer lw.Close()
	stderr = lw
	var newHandler func(io.Writer) slog.Handler
	hopts := &slog.HandlerOptions{}
	if configPath == "" {
		hopts.Level = slog.LevelWarn // the demo's summary, not 400 access-log lines
	}
	switch logFormat {
	case "text":
		newHandler = func(w io.Writer) slog.Handler { return newLineHandler(w, false, hopts) }
	case "json":
		newHandler = func(w io.Writer) slog.Handler { return newLineHandler(w, true, hopts) }
	default:
		return usageError{fmt.Errorf("-log-format: want text or json, got %q", logFormat)}
	}
	logger := slog.New(newHandler(stderr))
	routeRedisLog(logger)
	defer routeStdLog(logger)()
	accessDest := f.accessLog
	if check && accessDest != "" {
		accessDest = "off" // -check writes nothing but its verdict
	}
	access, closeAccess, err := accessLogger(accessDest, stdout, newHandler)
	if err != nil {
		return usageError{err}
	}
	defer closeAccess()
	if check && configPath == "" {
		return usageError{errors.New("-check needs -config FILE")}
	}
	if f.watch && configPath == "" {
		return usageError{errors.New("-watch needs -config FILE")} // the demo has no file to watch
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Without scope info: the otel_scope_* labels would be empty for the
	// library's meters (named without a version) and add nothing a metric
	// name does not already say.
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return err
	}
	tp, err := newTracerProvider(ctx)
	if err != nil {
		return usageError{err}
	}
	mp := sdkmetric.NewMeterProvider(meterProviderOptions(exporter, tp != nil)...)
	defer func() { _ = mp.Shutdown(context.Background()) }()
	opts := []proxy.Option{
		proxy.WithLogger(logger),
		proxy.WithAccessLog(access),
		proxy.WithMeterProvider(mp),
		proxy.WithMetricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})),
	}
	if tp != nil {
		defer shutdownTracerProvider(tp)
		opts = append(opts, proxy.WithTracerProvider(tp))
	}

	if configPath == "" {
		return runDemo(ctx, stdout, mp, opts...)
	}
	cfg, err := proxy.LoadConfig(configPath)
	if err != nil {
		return usageError{err}
	}
	if check {
		fmt.Fprintln(stdout, "config OK")
		return nil
	}
	srv, err := proxy.NewServer(cfg, opts...)
	if err != nil {
		return usageError{err}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	defer endDelayOnSecondSignal(ctx, srv)()
	return srv.RunReloading(ctx, configPath, f.watch, hup)
}
