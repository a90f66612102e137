package logicalhost_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/logicalhost"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMatch(t *testing.T) {
	tests := []struct {
		scheme, host string
		want         bool
	}{
		{"http", "users", true},
		{"http", "USERS", true},
		{"http", "users:80", true},
		{"HTTP", "Users:80", true},
		{"https", "users:443", true},
		{"https", "users:80", false},
		{"http", "users:443", false},
		{"http", "users:8080", false},
		{"http", "users:", false},
		{"http", "users.internal", false},
		{"http", "user", false},
		{"http", "[users]:80", false},
		{"http", "[::1]:80", false},
		{"http", "", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, logicalHost(tt.scheme, tt.host), "%s://%s", tt.scheme, tt.host)
	}
}

func logicalHost(scheme, host string) bool { return logicalhost.Match(scheme, host, "users") }
