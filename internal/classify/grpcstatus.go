package classify

import (
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// GRPCHeaderStatus reads the status of a gRPC call answered over HTTP from
// its response headers. grpc-go answers a call that fails before any
// message "trailers-only": HTTP status 200 with grpc-status among the
// headers, which an HTTP status rule never sees. isGRPC is whether h is a
// gRPC response at all (a Content-Type of application/grpc or one of its
// subtypes); ok is whether it carries a grpc-status that parses, and code
// is that status. A gRPC response without one has begun its stream: its
// status comes in the trailers, after the body.
func GRPCHeaderStatus(h http.Header) (code codes.Code, isGRPC, ok bool) {
	// The map by its canonical keys, as Header.Get would look them up,
	// without canonicalising the constant key on every response.
	ct := h["Content-Type"]
	if len(ct) == 0 || !strings.HasPrefix(ct[0], "application/grpc") {
		return 0, false, false
	}
	gs := h["Grpc-Status"]
	if len(gs) == 0 {
		return 0, true, false
	}
	n, err := strconv.ParseUint(gs[0], 10, 32)
	if err != nil {
		return 0, true, false
	}
	return codes.Code(n), true, true
}
