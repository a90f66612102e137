package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// tracerShutdownTimeout bounds the flush of the last spans on exit.
const tracerShutdownTimeout = 5 * time.Second

// newTracerProvider builds the tracer provider the OpenTelemetry
// environment asks for: OTEL_TRACES_EXPORTER=otlp|console|none (unset: none,
// unlike autoexport's own default), OTEL_EXPORTER_OTLP_* for the OTLP
// exporter, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the
// resource, OTEL_BSP_* for the batch processor. It returns nil when
// tracing is off. It also sets the global propagator to W3C trace context
// and baggage, which the server spans extract and the client spans inject.
func newTracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	exp, err := autoexport.NewSpanExporter(ctx,
		autoexport.WithFallbackSpanExporter(func(context.Context) (sdktrace.SpanExporter, error) {
			return nil, nil // OTEL_TRACES_EXPORTER unset: no traces
		}))
	if err != nil {
		// Most likely an unknown OTEL_TRACES_EXPORTER (or _PROTOCOL).
		return nil, fmt.Errorf("tracing from the environment (OTEL_TRACES_EXPORTER=%q, OTEL_EXPORTER_OTLP_PROTOCOL=%q): %w",
			os.Getenv("OTEL_TRACES_EXPORTER"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), err)
	}
	if exp == nil || autoexport.IsNoneSpanExporter(exp) {
		return nil, nil
	}
	// service.name is "ambassador" unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise (later detectors win).
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", "ambassador")),
		resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// shutdownTracerProvider flushes the spans still queued and stops tp.
func shutdownTracerProvider(tp *sdktrace.TracerProvider) {
	ctx, cancel := context.WithTimeout(context.Background(), tracerShutdownTimeout)
	defer cancel()
	_ = tp.Shutdown(ctx)
}
