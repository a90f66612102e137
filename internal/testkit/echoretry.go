package testkit

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// FirstAttemptFails is an upstream for retry tests: it answers the first
// attempt of a request whose path ends in "/retry" with 503, and every
// other attempt with the request's X-Id header (as X-Echo-Id) and body
// echoed back. Attempts are counted per X-Id. Use NewFirstAttemptFails.
type FirstAttemptFails struct {
	mu       sync.Mutex
	attempts map[string]int
}

// NewFirstAttemptFails returns an upstream that has seen no request.
func NewFirstAttemptFails() *FirstAttemptFails {
	return &FirstAttemptFails{attempts: map[string]int{}}
}

// ServeHTTP answers one attempt.
func (f *FirstAttemptFails) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	id := r.Header.Get("X-Id")
	f.mu.Lock()
	f.attempts[id]++
	n := f.attempts[id]
	f.mu.Unlock()
	if n == 1 && strings.HasSuffix(r.URL.Path, "/retry") {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("X-Echo-Id", id)
	_, _ = w.Write(b)
}

// Attempts returns how many attempts of X-Id id arrived.
func (f *FirstAttemptFails) Attempts(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[id]
}

// IDs returns how many distinct X-Ids arrived.
func (f *FirstAttemptFails) IDs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attempts)
}
