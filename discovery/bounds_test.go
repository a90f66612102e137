package discovery_test

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// TestValidateBoundsAndFromConfigAgree: every config Validate accepts,
// FromConfig builds; durations are bounded; a dns host that is not a DNS
// name is refused by Validate, not only later by DNS.
func TestValidateBoundsAndFromConfigAgree(t *testing.T) {
	hc := func(iv, to time.Duration) discovery.HealthCheckConfig {
		return discovery.HealthCheckConfig{Path: "/h", Interval: iv, Timeout: to}
	}
	static := []string{"127.0.0.1:1"}
	for _, tc := range []struct {
		name  string
		c     discovery.Config
		field string // "" = valid
	}{
		{"refresh 1ms", discovery.Config{DNS: "localhost:1", Refresh: time.Millisecond}, ""},
		{"refresh 24h", discovery.Config{SRV: "_http._tcp.users.internal", Refresh: 24 * time.Hour}, ""},
		{"refresh 1ns", discovery.Config{DNS: "localhost:1", Refresh: 1}, "refresh"},
		{"refresh 25h", discovery.Config{DNS: "localhost:1", Refresh: 25 * time.Hour}, "refresh"},
		{"health interval 1ns", discovery.Config{Static: static, HealthCheck: hc(1, 0)}, "health_check.interval"},
		{"health interval 1000h", discovery.Config{Static: static, HealthCheck: hc(1000*time.Hour, 0)}, "health_check.interval"},
		{"health timeout 1ns", discovery.Config{Static: static, HealthCheck: hc(0, 1)}, "health_check.timeout"},
		{"dns host a..b", discovery.Config{DNS: "a..b:80"}, "dns"},
		{"srv name a..b", discovery.Config{SRV: "_http._tcp.a..b"}, "srv"},
		{"resolver host a..b", discovery.Config{DNS: "localhost:1", Resolver: "a..b:53"}, "resolver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			_, ferr := discovery.FromConfig(tc.c)
			if tc.field == "" {
				require.NoError(t, err)
				require.NoError(t, ferr)
				return
			}
			var fe *discovery.FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.Error(t, ferr)
		})
	}
}

// TestFileRefusesWhatIsNotARegularFile: a FIFO would block the read for a
// writer and /dev/zero would never end; both fail at once.
func TestFileRefusesWhatIsNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "endpoints.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, path := range []string{"/dev/zero", fifo, t.TempDir()} {
		_, err := discovery.File(path)
		var fe *discovery.FileError
		require.ErrorAs(t, err, &fe, path)
		assert.Contains(t, fe.Msg, "not a regular file")
	}
}
