package ambassador_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
)

// TLS files that are symlinks into another directory (a mounted Secret
// linked from elsewhere) are followed: rotating the targets is picked up.
// (The reloader used to watch only the links' own directory and missed it.)
func TestTLSRotationThroughSymlinks(t *testing.T) {
	p := newPKI(t)
	srv := p.Server(false)
	files := p.ClientTLS("client-1")
	links := t.TempDir()
	link := func(target string) string {
		l := filepath.Join(links, filepath.Base(target))
		require.NoError(t, os.Symlink(target, l))
		return l
	}
	cfg := ambassador.TLSConfig{CAFile: link(files.CAFile), CertFile: link(files.CertFile), KeyFile: link(files.KeyFile)}
	s := newStack(t, ambassador.ServiceConfig{Name: "users", TLS: cfg,
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}}, quietLogs)

	body, err := getNewConn(t, s, "http://users/")
	require.NoError(t, err)
	assert.Equal(t, "client-1 HTTP/1.1", body)

	p.ClientTLS("client-2")
	require.Eventually(t, func() bool {
		body, err := getNewConn(t, s, "http://users/")
		return err == nil && body == "client-2 HTTP/1.1"
	}, 3*time.Second, 5*time.Millisecond, "rotated certificate picked up through the links")
}
