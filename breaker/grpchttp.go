package breaker

import (
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/classify"
)

// grpcHTTPOutcome classifies a gRPC call that went through the HTTP
// RoundTripper (the ambassador proxying gRPC over HTTP/2): grpc-go answers
// an error without a response message "trailers-only", with grpc-status in
// the response headers and HTTP status 200, so the 5xx rule never sees it.
// Such a response is classified by the gRPC failure codes, as the
// interceptors classify a call. ok is false for every other response; a
// status that only arrives in the trailers, after the body, is the body's
// and not looked at (the response is classified when its headers arrive).
func (b *Breaker) grpcHTTPOutcome(req *http.Request, resp *http.Response) (Outcome, bool) {
	if resp == nil || resp.ProtoMajor != 2 {
		return 0, false
	}
	code, _, ok := classify.GRPCHeaderStatus(resp.Header)
	if !ok {
		return 0, false
	}
	if code == codes.OK {
		return Success, true
	}
	return b.grpcOutcome(req.Context(), status.Error(code, "")), true
}
