package ambassador_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
)

// An upstream's response headers are read up to
// ambassador.MaxResponseHeaderBytes: a response whose headers are larger
// fails (the Stack does not buffer megabytes of headers per request on an
// upstream's say-so), one just under it arrives whole, on HTTP/1.1 and h2c.
func TestResponseHeadersAreBounded(t *testing.T) {
	for _, proto := range []string{ambassador.ProtocolHTTP1, ambassador.ProtocolH2C} {
		t.Run(proto, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, err := strconv.Atoi(r.URL.Query().Get("n"))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.Header().Set("X-Big", strings.Repeat("a", n))
			}))
			if proto == ambassador.ProtocolH2C {
				var p http.Protocols
				p.SetHTTP1(true)
				p.SetUnencryptedHTTP2(true)
				srv.Config.Protocols = &p
			}
			srv.Start()
			defer srv.Close()
			st := newStack(t, ambassador.ServiceConfig{
				Name:      "big",
				Protocol:  proto,
				Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}},
			})

			under := ambassador.MaxResponseHeaderBytes - 4<<10
			resp, err := st.RoundTrip(mustGet(t, "http://big/?n="+strconv.Itoa(under)))
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Len(t, resp.Header.Get("X-Big"), under, "headers under the bound arrive whole")

			resp, err = st.RoundTrip(mustGet(t, "http://big/?n="+strconv.Itoa(2*ambassador.MaxResponseHeaderBytes)))
			if err == nil {
				_ = resp.Body.Close()
			}
			require.Error(t, err, "headers over the bound fail the request")
			assert.Nil(t, resp)
		})
	}
}

func mustGet(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	return req
}

// The gRPC dial options bound response metadata the same way (grpc-go's
// client would take 16 MiB).
func TestGRPCResponseMetadataIsBounded(t *testing.T) {
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
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{
		Name: "users", Protocol: ambassador.ProtocolH2C,
		Discovery: discovery.Config{Static: []string{addr}},
	})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
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
	assert.Len(t, hdr.Get("x-big")[0], under, "metadata under the bound arrives whole")

	_, err = check(2 * ambassador.MaxResponseHeaderBytes)
	require.Error(t, err, "metadata over the bound fails the call")
	t.Log(err)
}
