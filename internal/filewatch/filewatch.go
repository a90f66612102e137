// Package filewatch reports changes of files watched by name, the way
// editors, deploy tools and Kubernetes replace them. It is the one watcher
// behind the ambassador's -watch config reload, the client stack's TLS file
// reloading and discovery's endpoint file source.
//
// A Watcher watches each file's directory rather than the file, because
// the ways a file is replaced are directory events: an editor writes a
// temporary file and renames it over the path, and Kubernetes mounts a
// ConfigMap as cfg.yaml -> ..data/cfg.yaml with ..data -> ..<timestamp>/,
// updating it by renaming a new ..data_tmp symlink over ..data. Of the
// directory's events it keeps only those naming an entry that resolving a
// watched path goes through (the path itself and the symlinks on the way);
// writes to other files in the directory are ignored. When a path is a
// symlink it also watches the directory of the file it finally names, so an
// in-place edit of the target is seen; that set is worked out again after
// every change.
//
// Events less than Options.Debounce apart are one change, sent on Changes
// once the files have been quiet for that long (or Options.MaxDelay after
// the first event, if they never pause); a change not yet received is not
// sent twice. A watch error (the kernel's queue overflowed) may hide a
// change, so it counts as one. A change means the files may have changed,
// not that their bytes differ: the receiver compares content.
//
// When fsnotify cannot watch (no inotify instance left), stops, or a
// watched directory is itself removed or renamed, the Watcher says so on
// Errors and falls back to sending a change every Options.PollInterval.
// Close stops its goroutine and waits for it.
package filewatch

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults of the zero Options.
const (
	DefaultDebounce     = 100 * time.Millisecond
	DefaultMaxDelay     = time.Second
	DefaultPollInterval = time.Second
)

// Options tunes a Watcher; zero fields mean the defaults above.
type Options struct {
	// Debounce is how long the files must stay quiet after an event
	// before a change is sent.
	Debounce time.Duration
	// MaxDelay bounds the wait after the first event of a burst that
	// never pauses.
	MaxDelay time.Duration
	// PollInterval is the period of changes sent while polling.
	PollInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	return o
}

// Watcher reports changes of a set of files; see the package doc.
type Watcher struct {
	paths []string        // absolute paths, as given (not resolved)
	dirs  map[string]bool // their directories: always watched
	opt   Options

	fsw    *fsnotify.Watcher // nil when polling from the start, or in tests fed events
	events <-chan fsnotify.Event
	errs   <-chan error

	changes  chan struct{}
	problems chan error
	stop     chan struct{}
	done     chan struct{}

	// Owned by the loop goroutine.
	names   map[string]bool // entries whose events matter
	targets map[string]bool // extra watched directories of resolved files
	polling bool
}

// New starts watching the files at paths (relative ones are made
// absolute). It fails only when a path cannot be made absolute; when
// fsnotify cannot watch, the Watcher polls and says so on Errors.
func New(paths []string, o Options) (*Watcher, error) {
	abs := make([]string, 0, len(paths))
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		abs = append(abs, a)
	}
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		for _, d := range dirsOf(abs) {
			if err = fsw.Add(d); err != nil {
				_ = fsw.Close()
				err = fmt.Errorf("watching directory %s: %w", d, err)
				break
			}
		}
	}
	if err != nil {
		w := start(abs, nil, nil, nil, o)
		w.report(fmt.Errorf("cannot watch, re-reading every %s: %w", w.opt.PollInterval, err))
		return w, nil
	}
	return start(abs, fsw, fsw.Events, fsw.Errors, o), nil
}

// start starts the loop on the given event and error streams. With nil
// streams it polls from the start; fsw may be nil with non-nil streams
// (tests feed events), then no directory beyond the paths' own is watched.
func start(paths []string, fsw *fsnotify.Watcher, events <-chan fsnotify.Event, errs <-chan error, o Options) *Watcher {
	w := &Watcher{
		paths: paths, dirs: map[string]bool{}, opt: o.withDefaults(),
		fsw: fsw, events: events, errs: errs,
		changes:  make(chan struct{}, 1),
		problems: make(chan error, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		targets:  map[string]bool{},
		polling:  events == nil,
	}
	for _, d := range dirsOf(paths) {
		w.dirs[d] = true
	}
	w.rearm()
	go w.loop()
	return w
}

// Changes delivers one value per debounced change of the files.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

// Errors delivers problems of the watch itself (not of the files' content):
// a watch error, or the fall-back to polling. A problem not yet received
// when the next comes is dropped; nobody has to receive them.
func (w *Watcher) Errors() <-chan error { return w.problems }

// Close stops watching and waits for the watcher's goroutine to end. It
// must be called once.
func (w *Watcher) Close() error {
	close(w.stop)
	<-w.done
	if w.fsw != nil {
		return w.fsw.Close()
	}
	return nil
}

func (w *Watcher) report(err error) {
	select {
	case w.problems <- err:
	default: // one is pending already
	}
}

func (w *Watcher) send() {
	select {
	case w.changes <- struct{}{}:
	default: // one is pending already
	}
}

// dirsOf returns the distinct directories of paths, in order.
func dirsOf(paths []string) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, p := range paths {
		if d := filepath.Dir(p); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// errPolling is a stand-in for an event stream that ended.
var errPolling = errors.New("the file watch stopped")
