package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/internal/testkit"
)

// An upstream answering with headers over ambassador.MaxResponseHeaderBytes
// gets the caller a 502 of the ambassador's own, not megabytes of headers.
func TestOversizedResponseHeadersAre502(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Big", strings.Repeat("a", 2*ambassador.MaxResponseHeaderBytes))
	}))
	defer up.Close()
	addr, _ := oneServiceAmbassador(t, []string{up.Listener.Addr().String()}, "retry: {}", "")
	resp, err := http.Get("http://" + addr + "/big")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("X-Big"))
	assert.Equal(t, "upstream_reset", resp.Header.Get("X-Outbound-Error"))
	assert.Equal(t, int32(1), hits.Load(), "the same answer again is not worth a retry")
}

// On the native gRPC path, upstream metadata over the bound fails the
// call; under it, it reaches the caller whole.
func TestOversizedGRPCMetadataFailsTheCall(t *testing.T) {
	addr := grpcUpstream(t, testkit.HeaderOfSize())
	amb, _ := oneServiceAmbassador(t, []string{addr}, "protocol: h2c\nretry: {}", "")
	conn, err := grpc.NewClient(amb, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { assert.NoError(t, conn.Close()) }()
	err = testkit.HeaderBound(t, conn, ambassador.MaxResponseHeaderBytes)
	require.Error(t, err)
	assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
}
