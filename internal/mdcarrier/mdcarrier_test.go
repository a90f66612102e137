package mdcarrier_test

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/internal/mdcarrier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A trace context injected into metadata through the carrier is the one
// extracted from it, and the caller's other metadata is kept.
func TestTraceContextRoundTrips(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)

	md := metadata.Pairs("x-user", "ada")
	prop := propagation.TraceContext{}
	prop.Inject(ctx, mdcarrier.Carrier(md))
	assert.Equal(t, []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, md.Get("traceparent"))
	keys := mdcarrier.Carrier(md).Keys()
	sort.Strings(keys)
	assert.Equal(t, []string{"traceparent", "x-user"}, keys)

	got := trace.SpanContextFromContext(prop.Extract(context.Background(), mdcarrier.Carrier(md)))
	require.True(t, got.IsValid())
	assert.Equal(t, tid, got.TraceID())
	assert.Equal(t, sid, got.SpanID())
	assert.Equal(t, "", mdcarrier.Carrier(md).Get("absent"))
}
