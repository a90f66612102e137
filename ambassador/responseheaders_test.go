package ambassador_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
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
	addr := grpcUpstream(t, testkit.HeaderOfSize())
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{
		Name: "users", Protocol: ambassador.ProtocolH2C,
		Discovery: discovery.Config{Static: []string{addr}},
	})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	defer func() { assert.NoError(t, conn.Close()) }()
	err = testkit.HeaderBound(t, conn, ambassador.MaxResponseHeaderBytes)
	require.Error(t, err, "metadata over the bound fails the call")
	t.Log(err)
}
