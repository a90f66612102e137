// Package retryafter parses the Retry-After header of HTTP responses
// (RFC 9110 section 10.2.3): a number of delta-seconds or an HTTP-date.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxSeconds bounds delta-seconds so the product with time.Second cannot
// overflow a Duration.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

// Parse interprets a Retry-After value relative to now. It returns the delay
// and true for a valid value; a date in the past yields 0 and true. It returns
// false for an empty, negative or malformed value, which callers treat as if
// the header were absent.
func Parse(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if c := v[0]; c >= '0' && c <= '9' {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && allDigits(v) {
				return time.Duration(maxSeconds) * time.Second, true
			}
			return 0, false
		}
		if n > maxSeconds {
			n = maxSeconds
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// FromResponse returns the Retry-After delay of a 429 or 503 response.
func FromResponse(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	return Parse(v, now)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
