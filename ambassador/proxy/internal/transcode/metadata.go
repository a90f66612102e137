package transcode

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/metadata"
)

// MetadataPrefix starts the HTTP headers that carry gRPC metadata both
// ways: Grpc-Metadata-Tenant: a is metadata "tenant: a".
const MetadataPrefix = "Grpc-Metadata-"

// requestMetadata is the call metadata of the request headers h: every
// Grpc-Metadata-<name> header, Authorization, and the W3C trace context
// (traceparent, tracestate; Handler.Propagator replaces it). Values of "-bin" keys
// are base64 in the header (padded or not) and raw in the metadata.
func requestMetadata(h http.Header) (metadata.MD, error) {
	md := metadata.MD{}
	for k, vs := range h {
		var key string
		switch {
		case k == "Authorization", k == "Traceparent", k == "Tracestate":
			key = strings.ToLower(k) // the caller's trace context goes on as it came
		case len(k) > len(MetadataPrefix) && strings.EqualFold(k[:len(MetadataPrefix)], MetadataPrefix):
			key = strings.ToLower(k[len(MetadataPrefix):])
		default:
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(key, "-bin") {
				raw, err := decodeBinary(v)
				if err != nil {
					return nil, fmt.Errorf("header %s: not base64: %v", k, err)
				}
				v = string(raw)
			}
			md.Append(key, v)
		}
	}
	return md, nil
}

func decodeBinary(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// setResponseMetadata adds md to h as Grpc-Metadata-<name> headers (keys
// made canonical by net/http; "-bin" values base64), leaving out
// content-type and grpc-* (the gRPC transport's own). prefix is "" for
// headers and http.TrailerPrefix for trailers sent after the body began.
func setResponseMetadata(h http.Header, md metadata.MD, prefix string) {
	for k, vs := range md {
		if k == "content-type" || strings.HasPrefix(k, "grpc-") {
			continue // the transport's, not the service's
		}
		name := prefix + http.CanonicalHeaderKey(MetadataPrefix+k)
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = base64.StdEncoding.EncodeToString([]byte(v))
			}
			h[name] = append(h[name], v)
		}
	}
}
