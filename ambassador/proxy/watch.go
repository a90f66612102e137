package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce is how long a config file must stay quiet after an event
// before -watch reloads it: events less than this apart are one reload.
// Events that never pause are still a reload every watchMaxDelay.
const (
	watchDebounce = 100 * time.Millisecond
	watchMaxDelay = time.Second
)

// configWatcher reports changes of one config file, by name, for -watch.
//
// It watches the file's directory rather than the file, because the ways a
// file is replaced are directory events: an editor or a deploy tool writes a
// temporary file and renames it over the config path, and Kubernetes mounts
// a ConfigMap as cfg.yaml -> ..data/cfg.yaml with ..data -> ..<timestamp>/,
// updating it by renaming a new ..data_tmp symlink over ..data. Of the
// directory's events it keeps only those naming an entry that resolving the
// config path goes through (the path itself and the symlinks on the way:
// ..data above); writes to other files in the directory (the process's own
// log file, say) are ignored. When the path is a symlink it also watches the
// directory of the file it finally names, so an in-place edit of the target
// is seen; that set is worked out again after every change.
//
// Events less than the debounce interval apart are one change: a change is
// sent on Changes once the file has been quiet for that long (or, if events
// never pause, watchMaxDelay after the first), and a change not yet
// received is not sent twice. It reports that the file may have
// changed, not that its bytes differ: the receiver compares content (see
// reloader). Close stops its goroutine and waits for it.
type configWatcher struct {
	path     string // absolute config path, as given (not resolved)
	dir      string // its directory: always watched
	debounce time.Duration

	fsw    *fsnotify.Watcher // nil in tests that feed events directly
	events <-chan fsnotify.Event
	errs   <-chan error

	changes chan struct{}
	stop    chan struct{}
	done    chan struct{}

	// Owned by the loop goroutine.
	names     map[string]bool // entries whose events matter
	targetDir string          // extra watched directory of the resolved file; "" if none
}

// newConfigWatcher starts watching the config file at path.
func newConfigWatcher(path string) (*configWatcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("-watch %s: %w", path, err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("-watch %s: %w", path, err)
	}
	if err := fsw.Add(filepath.Dir(abs)); err != nil {
		_ = fsw.Close()
		return nil, fmt.Errorf("-watch %s: watching its directory: %w", path, err)
	}
	w := startWatcher(abs, fsw, fsw.Events, fsw.Errors, watchDebounce)
	return w, nil
}

// startWatcher starts the loop on the given event and error streams; fsw
// may be nil (then no directory beyond path's own is watched).
func startWatcher(path string, fsw *fsnotify.Watcher, events <-chan fsnotify.Event, errs <-chan error, debounce time.Duration) *configWatcher {
	w := &configWatcher{
		path: path, dir: filepath.Dir(path), debounce: debounce,
		fsw: fsw, events: events, errs: errs,
		changes: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.rearm()
	go w.loop()
	return w
}

// Changes delivers one value per debounced change of the file.
func (w *configWatcher) Changes() <-chan struct{} { return w.changes }

// Close stops watching and waits for the watcher's goroutine to end.
func (w *configWatcher) Close() error {
	close(w.stop)
	<-w.done
	if w.fsw != nil {
		return w.fsw.Close()
	}
	return nil
}

func (w *configWatcher) loop() {
	defer close(w.done)
	timer := time.NewTimer(w.debounce)
	timer.Stop()
	defer timer.Stop()
	var burst bool         // an event came and no change was sent since
	var deadline time.Time // when a change is sent even if events go on
	schedule := func() {
		now := time.Now()
		if !burst {
			burst, deadline = true, now.Add(watchMaxDelay)
		}
		timer.Reset(min(w.debounce, deadline.Sub(now)))
	}
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.events:
			if !ok {
				return
			}
			if w.names[filepath.Clean(ev.Name)] {
				schedule()
			}
		case _, ok := <-w.errs:
			if !ok {
				w.errs = nil
				continue
			}
			// Events may have been lost (the kernel queue overflowed):
			// look at the file, whose content says whether it changed.
			schedule()
		case <-timer.C:
			burst = false
			w.rearm()
			select {
			case w.changes <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}

// rearm works out which directory entries lead to the file now and watches
// the resolved file's directory when it is not the config's own (best
// effort: if that directory cannot be watched, only the config's own
// directory is, as for a plain file).
func (w *configWatcher) rearm() {
	w.names = chainEntries(w.dir, w.path)
	target := ""
	if resolved, err := filepath.EvalSymlinks(w.path); err == nil {
		w.names[resolved] = true
		if d := filepath.Dir(resolved); d != w.dir {
			target = d
		}
	}
	if w.fsw == nil || target == w.targetDir {
		return
	}
	if w.targetDir != "" {
		_ = w.fsw.Remove(w.targetDir) // gone already when a ..data swap removed it
	}
	w.targetDir = ""
	if target != "" && w.fsw.Add(target) == nil {
		w.targetDir = target
	}
}

// maxLinkHops bounds the symlinks chainEntries follows (a loop ends there).
const maxLinkHops = 40

// chainEntries returns path and every entry of dir that following path's
// symlinks passes through: for cfg.yaml -> ..data/cfg.yaml it is cfg.yaml
// and ..data. Entries that do not exist yet simply match nothing.
func chainEntries(dir, path string) map[string]bool {
	names := map[string]bool{path: true}
	p := path
	for range maxLinkHops {
		target, err := os.Readlink(p)
		if err != nil {
			break // not a symlink, or not there: the chain ends
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		if e, ok := entryOf(dir, target); ok {
			names[e] = true
		}
		p = target
	}
	return names
}

// entryOf returns the entry of dir that p lies in (or is), if p is under dir.
func entryOf(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	return filepath.Join(dir, first), true
}
