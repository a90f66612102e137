package discovery

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/outbound-go/outbound/internal/boundedfile"
	"github.com/outbound-go/outbound/internal/filewatch"
)

// maxFileSize bounds what the file source reads; only regular files are
// read (see internal/boundedfile).
const maxFileSize = 16 << 20

// fileSource is the Source File returns.
type fileSource struct {
	path string // absolute
}

// File returns a Source of the endpoints listed in the file at path: a
// top-level YAML or JSON list of {address, weight} (and optional metadata,
// a map of strings), such as
//
//	# endpoints.yaml
//	- address: 10.0.0.1:8080
//	  weight: 3
//	- {address: users-2.internal:8080}
//
// or [{"address": "10.0.0.1:8080", "weight": 3}]. Each address must be
// host:port with a port in 1-65535 and each weight an integer ≥ 0 (0 means
// 1); an address may appear once; other keys are errors. An explicit empty
// list ([]) is a valid, empty set; an empty or comment-only file is an error.
//
// File reads and checks the file at once: a missing, unreadable or
// malformed file is an error from File, so a bad config is refused at
// start. Only a regular file (or a symbolic link to one) of at most 16 MiB
// is read: a FIFO, a device or a directory is refused without blocking. Problems in the file are *FileError values joined with
// errors.Join, one per problem, each with its line.
//
// # Watching
//
// Watch reports the set at once, then watches the file's directory with
// fsnotify and re-reads the file 100ms after the last event for it or for
// a symlink on the way to it (a burst of events is one read; one that never
// pauses is a read every second), so in-place writes, editors' atomic
// write-then-rename and Kubernetes ConfigMap symlink swaps are all seen,
// and writes to other files in the directory are not. A set is reported
// only when it differs from the last. A file that is
// malformed or missing while watched is reported as update(nil, err) and the
// last good set stays. Relative paths are made absolute when File is called.
// When the directory cannot be watched, or is itself removed or renamed,
// Watch reports that and falls back to reading the file every second.
func File(path string) (Source, error) {
	if path == "" {
		return nil, errors.New("discovery: file: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("discovery: file: %w", err)
	}
	if _, err := readEndpointFile(abs); err != nil {
		return nil, err
	}
	return &fileSource{path: abs}, nil
}

// readEndpointFile reads and parses the endpoint file at path.
func readEndpointFile(path string) ([]Endpoint, error) {
	data, err := boundedfile.Read(path, maxFileSize)
	switch {
	case errors.Is(err, boundedfile.ErrTooLarge):
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	case errors.Is(err, boundedfile.ErrNotRegular):
		return nil, &FileError{Path: path, Msg: "not a regular file (a FIFO, device or directory is never read)"}
	case err != nil:
		return nil, fmt.Errorf("discovery: endpoint file: %w", err)
	}
	eps, err := parseEndpointFile(data)
	if err != nil {
		return nil, withPath(err, path)
	}
	return eps, nil
}

// withPath sets Path on every *FileError in err.
func withPath(err error, path string) error {
	var fe *FileError
	if errors.As(err, &fe) && fe.Path == "" {
		fe.Path = path
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			withPath(e, path)
		}
	}
	return err
}

// Watch implements Source.
func (s *fileSource) Watch(ctx context.Context, update func([]Endpoint, error)) {
	var last []Endpoint
	have := false
	reload := func() {
		eps, err := readEndpointFile(s.path)
		if err != nil {
			update(nil, err)
			return
		}
		if have && sameEndpoints(last, eps) {
			return
		}
		last, have = eps, true
		update(slices.Clone(eps), nil)
	}

	w, err := filewatch.New([]string{s.path}, filewatch.Options{})
	if err != nil { // s.path is absolute already: not expected
		update(nil, fmt.Errorf("discovery: endpoint file %s: %w", s.path, err))
		return
	}
	defer w.Close()

	// Read after the watch is in place, so no write falls between the two.
	if ctx.Err() == nil {
		reload()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.Changes():
			reload()
		case err := <-w.Errors():
			// Cannot watch, or the directory went away: the watcher
			// polls from here on, and says so.
			update(nil, fmt.Errorf("discovery: endpoint file %s: %w", s.path, err))
		}
	}
}

// String describes the source for logs and errors.
func (s *fileSource) String() string { return "file " + s.path }
