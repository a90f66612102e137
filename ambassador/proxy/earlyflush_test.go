package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
)

// heldLog is an access-log handler whose Handle waits until release is
// closed (or a bound passes, so that a failing test still ends).
type heldLog struct {
	release chan struct{}
	logged  chan struct{} // closed when Handle returns
}

func (h *heldLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *heldLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *heldLog) WithGroup(string) slog.Handler            { return h }
func (h *heldLog) Handle(context.Context, slog.Record) error {
	select {
	case <-h.release:
	case <-time.After(3 * time.Second):
	}
	close(h.logged)
	return nil
}

// TestAnswerIsNotHeldByTheAccessLog: over HTTP/1 the caller has the whole
// answer of a proxied request while its access-log line is still being
// written, so the bookkeeping after the answer adds nothing to the caller's
// latency. Without the early flush net/http kept the answer in its buffer
// until the handler (and the log line) returned: the client's read waited
// for the held handler's bound.
func TestAnswerIsNotHeldByTheAccessLog(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	held := &heldLog{release: make(chan struct{}), logged: make(chan struct{})}
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "users"}},
		Services:  map[string]ambassador.ServiceConfig{"users": svc(up.Listener.Addr().String())},
	}, proxy.WithAccessLog(slog.New(held)))
	require.NoError(t, err)
	urls := serve(t, s)

	c := client(t)
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get(urls[0] + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	select {
	case b := <-got:
		assert.Equal(t, "hello", b)
	case <-held.logged:
		t.Fatal("the answer reached the client only after the access-log line was written")
	}
	close(held.release)
	<-held.logged
}
