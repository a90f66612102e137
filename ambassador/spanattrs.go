package ambassador

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/internal/attempt"
)

// attemptSpan sits just below otelhttp's transport and adds to the client
// span of each attempt what otelhttp cannot know: the service, the attempt
// number, the endpoint discovery picked and http.request.resend_count
// (attempt-1). When the span does not record (no SDK, or a sampled-out
// trace) it only passes the request on.
type attemptSpan struct {
	next    http.RoundTripper
	service attribute.KeyValue
}

func (t *attemptSpan) RoundTrip(req *http.Request) (*http.Response, error) {
	span := trace.SpanFromContext(req.Context())
	if span.IsRecording() {
		_, n := attempt.FromContext(req.Context())
		if n < 1 {
			n = 1 // no retry layer: the only attempt
		}
		span.SetAttributes(t.service,
			attribute.Int("outbound.attempt", n),
			attribute.String("outbound.endpoint", req.URL.Host),
			attribute.Int("http.request.resend_count", n-1))
	}
	return t.next.RoundTrip(req)
}
