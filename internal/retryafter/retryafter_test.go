package retryafter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/retryafter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"seconds", "1", time.Second, true},
		{"zero", "0", 0, true},
		{"spaces", "  120 ", 2 * time.Minute, true},
		{"date ahead", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"rfc850 date", now.Add(10 * time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT"), 10 * time.Second, true},
		{"huge", "99999999999999999999999", time.Duration(int64(1<<63-1)/int64(time.Second)) * time.Second, true},
		{"empty", "", 0, false},
		{"negative", "-5", 0, false},
		{"fraction", "1.5", 0, false},
		{"garbage", "soon", 0, false},
		{"digits then junk", "12abc", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := retryafter.Parse(tc.in, now)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFromResponse(t *testing.T) {
	now := time.Now()
	mk := func(code int, ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	d, ok := retryafter.FromResponse(mk(429, "3"), now)
	assert.True(t, ok)
	assert.Equal(t, 3*time.Second, d)
	d, ok = retryafter.FromResponse(mk(503, "2"), now)
	assert.True(t, ok)
	assert.Equal(t, 2*time.Second, d)
	_, ok = retryafter.FromResponse(mk(500, "2"), now)
	assert.False(t, ok, "only 429 and 503 carry a meaningful Retry-After")
	_, ok = retryafter.FromResponse(mk(503, ""), now)
	assert.False(t, ok)
	_, ok = retryafter.FromResponse(nil, now)
	assert.False(t, ok)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "0", "120", "-1", "1.5", "", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := retryafter.Parse(s, now)
		if d < 0 {
			t.Fatalf("Parse(%q) = %v: negative delay", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("Parse(%q) = %v, false: invalid value must yield 0", s, d)
		}
	})
}
