package breaker

import (
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	ct := resp.Header["Content-Type"]
	if len(ct) == 0 || !strings.HasPrefix(ct[0], "application/grpc") {
		return 0, false
	}
	gs := resp.Header["Grpc-Status"]
	if len(gs) == 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(gs[0], 10, 32)
	if err != nil {
		return 0, false
	}
	code := codes.Code(n)
	if code == codes.OK {
		return Success, true
	}
	return b.grpcOutcome(req.Context(), status.Error(code, "")), true
}
