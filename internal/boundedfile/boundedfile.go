// Package boundedfile reads the files a config names (certificates, keys,
// endpoint lists, the config itself) so that a bad path can only fail:
// never block start-up, never exhaust memory. Only regular files are read
// (symbolic links are followed to one); a FIFO, a device such as
// /dev/zero, a socket or a directory is refused before any byte is read,
// and so is a file larger than the caller's limit. Callers classify the
// refusals with errors.Is against ErrNotRegular and ErrTooLarge; a file that
// cannot be opened keeps the os error (errors.Is(err, fs.ErrNotExist) holds
// for a missing one).
package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

var (
	// ErrNotRegular is wrapped by Read's error for a path that is not a
	// regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is wrapped by Read's error for a file over the limit.
	ErrTooLarge = errors.New("file too large")
)

// Read returns the contents of the regular file at path, at most limit
// bytes; a larger file is an error wrapping ErrTooLarge. The file is opened
// non-blocking and its mode checked again on the open descriptor, so a path
// swapped for a FIFO between the check and the open fails instead of
// waiting for a writer.
func Read(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, tooLarge(path, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, limit)
	}
	return data, nil
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, limit)
}

func checkMode(path string, fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		return nil
	}
	kind := "not a plain file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s is %s: %w", path, kind, ErrNotRegular)
}
