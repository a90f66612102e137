package discovery_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// An endpoint file that is a symlink to a file in another directory is
// followed there: an in-place edit of the target is a new set. (The
// source used to watch only the link's own directory and missed it.)
func TestFileSymlinkToAnotherDirectory(t *testing.T) {
	target := filepath.Join(t.TempDir(), "real.yaml")
	require.NoError(t, os.WriteFile(target, []byte("- address: 10.0.0.1:80\n"), 0o644))
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	require.NoError(t, os.Symlink(target, path))

	src, err := discovery.File(path)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	require.NoError(t, os.WriteFile(target, []byte("- address: 10.0.0.2:80\n"), 0o644))
	assert.Equal(t, []string{"10.0.0.2:80"}, addrs(w.nextSet(t)))
}
