// Package mdcarrier lets an OpenTelemetry propagator read and write gRPC
// metadata: the ambassador's native gRPC path and its JSON transcoding
// both inject the trace context into the metadata of the calls they make.
package mdcarrier

import (
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/metadata"
)

// Carrier is metadata as a propagation.TextMapCarrier.
type Carrier metadata.MD

var _ propagation.TextMapCarrier = Carrier(nil)

// Get returns the first value of key, or "".
func (c Carrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key with value.
func (c Carrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

// Keys lists the keys.
func (c Carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
