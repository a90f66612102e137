package ambassador

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
)

// serviceLabel puts a client Labeler carrying the service's name into the
// context of each request it passes to the otelhttp transport below, so
// that http.client.request.duration carries service. The Labeler is built
// once per stack and only read (otelhttp copies its attributes); a caller's
// own client Labeler is kept: its attributes and service go in a new one.
type serviceLabel struct {
	next    http.RoundTripper
	labeler *otelhttp.Labeler
	service attribute.KeyValue
}

func newServiceLabel(next http.RoundTripper, service string) *serviceLabel {
	kv := attribute.String("service", service)
	l := &otelhttp.Labeler{}
	l.Add(kv)
	return &serviceLabel{next: next, labeler: l, service: kv}
}

func (s *serviceLabel) RoundTrip(req *http.Request) (*http.Response, error) {
	l := s.labeler
	if caller, ok := otelhttp.ClientLabelerFromContext(req.Context()); ok {
		l = &otelhttp.Labeler{}
		l.Add(caller.Get()...)
		l.Add(s.service)
	}
	return s.next.RoundTrip(req.WithContext(otelhttp.ContextWithClientLabeler(req.Context(), l)))
}
