package discovery

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/outbound-go/outbound/internal/boundedfile"
)

const (
	// fileDebounce is how long the file source waits after the last change
	// event before it reads the file: an editor's or an orchestrator's
	// write arrives as a burst of events.
	fileDebounce = 100 * time.Millisecond
	// filePollInterval is how often the file source re-reads the file when
	// the system cannot watch it (no inotify instance left, say).
	filePollInterval = time.Second
	// maxFileSize bounds what the file source reads; only regular files
	// are read (see internal/boundedfile).
	maxFileSize = 16 << 20
)

// fileSource is the Source File returns.
type fileSource struct {
	path     string // absolute
	debounce time.Duration
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
// fsnotify and re-reads the file 100ms after the last event in it (a
// burst of events is one read), so in-place writes, editors' atomic
// write-then-rename and Kubernetes ConfigMap symlink swaps are all seen. A
// set is reported only when it differs from the last. A file that is
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
	return &fileSource{path: abs, debounce: fileDebounce}, nil
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

	dir := filepath.Dir(s.path)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(dir); err != nil {
			w.Close()
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			update(nil, fmt.Errorf("discovery: endpoint file %s: cannot watch, re-reading every %s: %w", s.path, filePollInterval, err))
			reload()
			pollFile(ctx, reload)
		}
		return
	}
	defer w.Close()

	// Read after the watch is in place, so no write falls between the two.
	if ctx.Err() == nil {
		reload()
	}
	debounce := time.NewTimer(0)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok { // fsnotify gave up: keep the file watched by polling
				pollFile(ctx, reload)
				return
			}
			if filepath.Clean(ev.Name) == dir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
				// The directory itself went away, and the watch with it.
				update(nil, fmt.Errorf("discovery: endpoint file %s: directory %s was removed or renamed; re-reading every %s", s.path, dir, filePollInterval))
				pollFile(ctx, reload)
				return
			}
			// Any event in the directory: the file itself, a rename over
			// it, or the ..data symlink Kubernetes swaps. reload compares.
			debounce.Reset(s.debounce)
		case err, ok := <-w.Errors:
			if !ok { // fsnotify gave up: keep the file watched by polling
				pollFile(ctx, reload)
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				debounce.Reset(s.debounce) // events were lost: read anyway
				continue
			}
			update(nil, fmt.Errorf("discovery: endpoint file %s: watch: %w", s.path, err))
		case <-debounce.C:
			reload()
		}
	}
}

// pollFile calls reload every filePollInterval until ctx is done.
func pollFile(ctx context.Context, reload func()) {
	t := time.NewTicker(filePollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reload()
		}
	}
}

// String describes the source for logs and errors.
func (s *fileSource) String() string { return "file " + s.path }
