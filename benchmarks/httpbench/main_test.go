package httpbench_test

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Library log lines (a discovery set change, say) would land between
	// benchmark result lines and break benchstat's parsing: discard them.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// flaky is an upstream that answers 503 to its first `fail` requests and
// 200 after, counting every request.
type flaky struct {
	fail  int64
	count atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if f.count.Add(1) <= f.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write(okBody)
}

// TestEachStackRetries503 proves, before anything is timed, that every
// contender that claims to retry really does: the upstream fails once with
// 503 then answers 200; the caller must see 200 and the upstream must have
// counted exactly 2 requests. Contenders that do not retry must pass the 503
// through after exactly 1 request.
func TestEachStackRetries503(t *testing.T) {
	for _, c := range contenders() {
		t.Run(c.name, func(t *testing.T) {
			up := &flaky{fail: 1}
			e := env{base: loopbackTransport(t), addrs: startUpstream(t, up)}
			s := c.build(t, e)
			req, err := http.NewRequest(http.MethodGet, s.url, nil)
			require.NoError(t, err)

			code, err := call(s.rt, req)
			require.NoError(t, err)
			if c.retries {
				assert.Equal(t, http.StatusOK, code, "the caller must see the retried 200")
				assert.Equal(t, int64(2), up.count.Load(), "upstream must see the failed attempt and the retry")
			} else {
				assert.Equal(t, http.StatusServiceUnavailable, code, "a stack without retry passes the 503 through")
				assert.Equal(t, int64(1), up.count.Load())
			}
		})
	}
}

// TestEachStackOnNoop checks that every contender answers the canned 200 of
// the no-op transport, serially and concurrently, as the benchmarks call it.
func TestEachStackOnNoop(t *testing.T) {
	for _, c := range contenders() {
		t.Run(c.name, func(t *testing.T) {
			s := c.build(t, noopEnv())
			req, err := http.NewRequest(http.MethodGet, s.url, nil)
			require.NoError(t, err)
			for range 10 {
				code, err := call(s.rt, req)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, code)
			}
		})
	}
}
