package discovery_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/clock"
)

// waitFor bounds every wait on a source in these tests.
const waitFor = 2 * time.Second

type update struct {
	eps []discovery.Endpoint
	err error
}

// watcher runs a Source's Watch for the length of a test and records its
// updates.
type watcher struct {
	ch chan update
}

// watch starts src.Watch; when the test ends it cancels the context and
// checks that Watch returns promptly, leaves no goroutine behind, and never
// calls update afterwards or concurrently. With clk, Watch gets it in its
// context as a Service's WithClock hands it on, so the dns and srv sources
// refresh when the test steps it.
func watch(t *testing.T, src discovery.Source, clk ...discovery.Clock) *watcher {
	t.Helper()
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	if len(clk) > 0 {
		ctx = clock.NewContext(ctx, clk[0])
	}
	w := &watcher{ch: make(chan update, 1000)}
	done := make(chan struct{})
	var returned atomic.Bool
	var inUpdate atomic.Int32
	go func() {
		defer close(done)
		src.Watch(ctx, func(eps []discovery.Endpoint, err error) {
			if returned.Load() {
				t.Errorf("update(%v, %v) after Watch returned", eps, err)
			}
			if inUpdate.Add(1) != 1 {
				t.Errorf("concurrent update calls")
			}
			defer inUpdate.Add(-1)
			if (eps == nil) == (err == nil) && eps != nil {
				t.Errorf("update with both a set and an error: %v, %v", eps, err)
			}
			select {
			case w.ch <- update{eps, err}:
			default:
				t.Errorf("update channel full")
			}
		})
		returned.Store(true)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			goleak.VerifyNone(t, before)
		case <-time.After(waitFor):
			t.Errorf("Watch did not return within %s of its context ending", waitFor)
		}
	})
	return w
}

// next returns the next update.
func (w *watcher) next(t *testing.T) update {
	t.Helper()
	select {
	case u := <-w.ch:
		return u
	case <-time.After(waitFor):
		t.Fatalf("no update within %s", waitFor)
		return update{}
	}
}

// nextSet returns the next update that carries a set, skipping errors.
func (w *watcher) nextSet(t *testing.T) []discovery.Endpoint {
	t.Helper()
	deadline := time.After(waitFor)
	var last error
	for {
		select {
		case u := <-w.ch:
			if u.err == nil {
				return u.eps
			}
			last = u.err
		case <-deadline:
			t.Fatalf("no set within %s; last error: %v", waitFor, last)
			return nil
		}
	}
}

// nextErr returns the next update's error, failing if it carries a set.
func (w *watcher) nextErr(t *testing.T) error {
	t.Helper()
	u := w.next(t)
	if u.err == nil {
		t.Fatalf("got set %v, want an error", addrs(u.eps))
	}
	return u.err
}

// noSet fails if an update carrying a set is waiting; errors are drained.
func (w *watcher) noSet(t *testing.T) {
	t.Helper()
	for {
		select {
		case u := <-w.ch:
			if u.err == nil {
				t.Fatalf("unexpected set update %v", addrs(u.eps))
			}
		default:
			return
		}
	}
}

func addrs(eps []discovery.Endpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Address
	}
	return out
}

func weights(eps []discovery.Endpoint) map[string]int {
	m := make(map[string]int, len(eps))
	for _, ep := range eps {
		m[ep.Address] = ep.Weight
	}
	return m
}
