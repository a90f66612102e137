package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// A gRPC error that grpc-go's server sends trailers-only (one HEADERS
// frame with grpc-status that ends the stream) reaches the caller through
// a listener off the native path (host_header: preserve: ReverseProxy
// serves every request) as headers, then trailers with the status:
// ReverseProxy writes the headers before the (empty) body, so the status
// has to travel as trailers. A grpc-go client gets the upstream's code and
// message, and so does a plain HTTP/2 client, in the trailers.
func TestGRPCTrailersOnlyOffTheNativePath(t *testing.T) {
	up := grpcUpstream(t) // health: "users" SERVING, any other service NOT_FOUND
	addr, _ := oneServiceAmbassador(t, []string{up}, "protocol: h2c\nhost_header: preserve", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	require.Error(t, err)
	st := status.Convert(err)
	assert.Equal(t, codes.NotFound, st.Code(), "grpc-go client: %v", err)
	assert.Equal(t, "unknown service", st.Message())
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "users"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	// The same call as raw HTTP/2: the status is in the trailers.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/grpc.health.v1.Health/Check",
		bytes.NewReader(grpcFrame(t, &healthpb.HealthCheckRequest{Service: "nope"})))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	hr, err := h2cClient(t).Do(req)
	require.NoError(t, err)
	defer hr.Body.Close()
	body, err := io.ReadAll(hr.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, hr.StatusCode)
	assert.Empty(t, body)
	assert.Empty(t, hr.Header.Values("Grpc-Status"), "not in the headers, which did not end the stream")
	assert.Equal(t, "5", hr.Trailer.Get("Grpc-Status"))
	assert.Equal(t, "unknown service", hr.Trailer.Get("Grpc-Message"))
	assert.Equal(t, "application/grpc", hr.Header.Get("Content-Type"), "Content-Type stays in the headers")
}

// grpcFrame is m as one length-prefixed gRPC message, uncompressed.
func grpcFrame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b))), b...)
}
