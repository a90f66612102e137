package transcode

import (
	"encoding/json"
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// HTTPStatus is the HTTP status of a gRPC code (DESIGN.md's table; the
// one grpc-gateway and Envoy use).
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss and codes beyond the table
		return http.StatusInternalServerError
	}
}

// statusJSON is the JSON of st: {"code": N, "message": "...", "details":
// [...]}, every key present, details as protojson Any (a detail whose type
// neither res nor the linked-in types know is left out).
func statusJSON(st *status.Status, res resolver) []byte {
	p := st.Proto()
	b := []byte(`{"code":`)
	b = strconv.AppendInt(b, int64(p.GetCode()), 10)
	msg, _ := json.Marshal(p.GetMessage()) // a string always marshals
	b = append(append(b, `,"message":`...), msg...)
	b = append(b, `,"details":[`...)
	opts := protojson.MarshalOptions{Resolver: res}
	n := 0
	for _, d := range p.GetDetails() {
		db, err := opts.Marshal(d)
		if err != nil {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, db...)
		n++
	}
	return append(b, "]}"...)
}

// writeStatus answers st as its HTTP status with the JSON body.
func writeStatus(w http.ResponseWriter, st *status.Status, res resolver) {
	b := statusJSON(st, res)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(HTTPStatus(st.Code()))
	_, _ = w.Write(append(b, '\n'))
}
