package retry_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

// TestAttemptRequestsNeverShareState sends concurrent requests, each with
// its own header, path and body, half of them retried once, and checks
// that every attempt the upstream saw and every resp.Request the caller
// got belongs to its own request: the first attempt's request copy lives
// in the call state of its own logical request, and a retried attempt
// gets a copy of its own, so no request's state reaches another.
func TestAttemptRequestsNeverShareState(t *testing.T) {
	up := testkit.NewFirstAttemptFails()
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	p, _, _ := newPolicy(t, retry.Config{MaxAttempts: 3, Budget: retry.BudgetConfig{Disabled: true}})
	rt := p.RoundTripper(srv.Client().Transport)

	const workers, perWorker = 16, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := fmt.Sprintf("%d-%d", w, i)
				path := "/" + id
				if i%2 == 0 {
					path += "/retry"
				}
				if !assert.NoError(t, sendOwn(rt, srv.URL, path, id)) {
					return
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, workers*perWorker, up.IDs(), "requests the upstream saw")
}

// sendOwn sends one PUT with header X-Id id and body "body-"+id to path and
// checks what came back, and that the caller's request was not changed.
func sendOwn(rt http.RoundTripper, base, path, id string) error {
	body := "body-" + id
	req, err := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Id", id)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: status %d", id, resp.StatusCode)
	case string(got) != body || resp.Header.Get("X-Echo-Id") != id:
		return fmt.Errorf("%s: upstream saw body %q, X-Id %q", id, got, resp.Header.Get("X-Echo-Id"))
	case resp.Request == req:
		return fmt.Errorf("%s: resp.Request is the caller's request, not an attempt's copy", id)
	case resp.Request.Header.Get("X-Id") != id || resp.Request.URL.Path != path:
		return fmt.Errorf("%s: resp.Request is another request's: X-Id %q, path %q", id, resp.Request.Header.Get("X-Id"), resp.Request.URL.Path)
	case req.URL.Path != path || req.Header.Get("X-Id") != id || req.Context() == resp.Request.Context():
		return fmt.Errorf("%s: the caller's request was changed", id)
	}
	return nil
}
