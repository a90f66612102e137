package classify_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"

	"github.com/outbound-go/outbound/internal/classify"
)

func TestGRPCHeaderStatus(t *testing.T) {
	tests := []struct {
		name         string
		header       http.Header
		code         codes.Code
		isGRPC, isOK bool
	}{
		{"not grpc", http.Header{"Content-Type": {"text/plain"}, "Grpc-Status": {"14"}}, 0, false, false},
		{"no content type", http.Header{"Grpc-Status": {"14"}}, 0, false, false},
		{"stream begun", http.Header{"Content-Type": {"application/grpc"}}, 0, true, false},
		{"trailers-only unavailable", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {"14"}}, codes.Unavailable, true, true},
		{"subtype, ok", http.Header{"Content-Type": {"application/grpc+proto"}, "Grpc-Status": {"0"}}, codes.OK, true, true},
		{"empty status", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {""}}, 0, true, false},
		{"status not a number", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {"unavailable"}}, 0, true, false},
		{"status out of range", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {"4294967296"}}, 0, true, false},
		{"first value only", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {"8", "14"}}, codes.ResourceExhausted, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, isGRPC, ok := classify.GRPCHeaderStatus(tc.header)
			assert.Equal(t, tc.isGRPC, isGRPC, "isGRPC")
			assert.Equal(t, tc.isOK, ok, "ok")
			assert.Equal(t, tc.code, code, "code")
		})
	}
}
