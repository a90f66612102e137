package main

import (
	"os"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// exemplarFilterEnv is the OpenTelemetry variable that chooses which
// measurements may carry an exemplar; the SDK reads it itself.
const exemplarFilterEnv = "OTEL_METRICS_EXEMPLAR_FILTER"

// meterProviderOptions configures the ambassador's meter provider to read
// into reader. Without tracing no request carries a sampled span, so the
// SDK's default trace-based exemplar filter would accept nothing while
// still being asked on every measurement; the filter is then switched off
// (the metrics are the same), unless the operator chose one through
// OTEL_METRICS_EXEMPLAR_FILTER.
func meterProviderOptions(reader sdkmetric.Reader, tracing bool) []sdkmetric.Option {
	opts := []sdkmetric.Option{sdkmetric.WithReader(reader)}
	if _, chosen := os.LookupEnv(exemplarFilterEnv); !tracing && !chosen {
		opts = append(opts, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	}
	return opts
}
