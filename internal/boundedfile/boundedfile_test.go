package boundedfile_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/boundedfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	require.NoError(t, os.WriteFile(small, []byte("hello"), 0o600))
	exact := filepath.Join(dir, "exact")
	require.NoError(t, os.WriteFile(exact, make([]byte, 64), 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 65), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(small, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	fifoLink := filepath.Join(dir, "fifo-link")
	require.NoError(t, os.Symlink(fifo, fifoLink))

	for _, tc := range []struct {
		name, path string
		want       string
		is         error
	}{
		{name: "regular", path: small, want: "hello"},
		{name: "at the limit", path: exact, want: string(make([]byte, 64))},
		{name: "symlink to regular", path: link, want: "hello"},
		{name: "over the limit", path: big, is: boundedfile.ErrTooLarge},
		{name: "dev zero", path: "/dev/zero", is: boundedfile.ErrNotRegular},
		{name: "fifo", path: fifo, is: boundedfile.ErrNotRegular},
		{name: "symlink to fifo", path: fifoLink, is: boundedfile.ErrNotRegular},
		{name: "directory", path: dir, is: boundedfile.ErrNotRegular},
		{name: "missing", path: filepath.Join(dir, "missing"), is: fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var (
				data []byte
				err  error
			)
			go func() {
				defer close(done)
				data, err = boundedfile.Read(tc.path, 64)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Read blocked")
			}
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
				assert.Contains(t, err.Error(), tc.path)
				assert.Nil(t, data)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(data))
		})
	}
}
