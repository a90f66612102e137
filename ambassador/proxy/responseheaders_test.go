package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
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
	addr := grpcUpstream(t, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-size"); len(v) == 1 {
			n, err := strconv.Atoi(v[0])
			if err != nil {
				return nil, err
			}
			if err := grpc.SetHeader(ctx, metadata.Pairs("x-big", strings.Repeat("a", n))); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	}))
	amb, _ := oneServiceAmbassador(t, []string{addr}, "protocol: h2c\nretry: {}", "")
	conn, err := grpc.NewClient(amb, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { assert.NoError(t, conn.Close()) }()
	check := func(n int) (metadata.MD, error) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-size", strconv.Itoa(n))
		var hdr metadata.MD
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "users"}, grpc.Header(&hdr))
		return hdr, err
	}

	under := ambassador.MaxResponseHeaderBytes - 4<<10
	hdr, err := check(under)
	require.NoError(t, err)
	require.Len(t, hdr.Get("x-big"), 1)
	assert.Len(t, hdr.Get("x-big")[0], under)

	_, err = check(2 * ambassador.MaxResponseHeaderBytes)
	require.Error(t, err)
	assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
}
