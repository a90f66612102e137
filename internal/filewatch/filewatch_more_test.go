package filewatch

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without a watch (fsnotify unavailable) the Watcher polls: a change every
// PollInterval, no sooner.
func TestWatcherPollsWithoutWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	synctest.Test(t, func(t *testing.T) {
		w := &fedWatcher{Watcher: start([]string{path}, nil, nil, nil, Options{})}
		t.Cleanup(func() { require.NoError(t, w.Close()) })
		elapse(DefaultPollInterval - time.Millisecond)
		assert.False(t, w.pending())
		elapse(time.Millisecond)
		assert.True(t, w.pending())
		elapse(DefaultPollInterval)
		assert.True(t, w.pending())
	})
}

// A watched directory removed (or renamed) ends its watch: the Watcher
// says so and polls from then on; so it does when fsnotify's stream ends.
func TestWatcherFallsBackToPolling(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for name, end := range map[string]func(w *fedWatcher){
		"directory removed": func(w *fedWatcher) { w.events <- fsnotify.Event{Name: dir, Op: fsnotify.Remove} },
		"directory renamed": func(w *fedWatcher) { w.events <- fsnotify.Event{Name: dir, Op: fsnotify.Rename} },
		"stream ended":      func(w *fedWatcher) { close(w.events) },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newFedWatcher(t, path)
				end(w)
				synctest.Wait()
				select {
				case err := <-w.Errors():
					assert.ErrorContains(t, err, "re-reading every 1s")
				default:
					t.Fatal("no error reported")
				}
				elapse(DefaultPollInterval)
				assert.True(t, w.pending(), "a change by polling")
				elapse(DefaultPollInterval)
				assert.True(t, w.pending(), "and another")
			})
		})
	}
}

// A queue overflow is a possible change, not a problem to report; any
// other watch error is both.
func TestWatcherReportsErrorsButNotOverflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	synctest.Test(t, func(t *testing.T) {
		w := newFedWatcher(t, path)
		w.errs <- fsnotify.ErrEventOverflow
		elapse(watchDebounce)
		assert.True(t, w.pending())
		select {
		case err := <-w.Errors():
			t.Fatalf("overflow reported: %v", err)
		default:
		}
		w.errs <- os.ErrPermission
		elapse(watchDebounce)
		assert.True(t, w.pending())
		assert.ErrorIs(t, <-w.Errors(), os.ErrPermission)
	})
}

// Several paths in several directories: an event for any of them is a
// change, others are not.
func TestWatcherSeveralPaths(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	pa, pb := filepath.Join(a, "cert.pem"), filepath.Join(b, "key.pem")
	synctest.Test(t, func(t *testing.T) {
		events, errs := make(chan fsnotify.Event), make(chan error)
		w := &fedWatcher{start([]string{pa, pb}, nil, events, errs, Options{}), events, errs}
		t.Cleanup(func() { require.NoError(t, w.Close()) })
		for _, p := range []string{pa, pb} {
			w.event(p)
			elapse(watchDebounce)
			assert.True(t, w.pending(), p)
		}
		w.event(filepath.Join(a, "key.pem"))
		elapse(time.Second)
		assert.False(t, w.pending())
	})
}

// With real fsnotify: a rename over the path and a Kubernetes ..data swap
// are each seen; an unrelated file in the directory is not.
func TestWatcherRealFiles(t *testing.T) {
	dir := t.TempDir()
	version := func(name string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "cfg.yaml"), []byte(name), 0o644))
	}
	version("..v1")
	require.NoError(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "cfg.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "cfg.yaml"), path))
	plain := filepath.Join(dir, "plain.yaml")
	require.NoError(t, os.WriteFile(plain, []byte("1"), 0o644))

	w, err := New([]string{path, plain}, Options{Debounce: 10 * time.Millisecond})
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	waitChange := func(what string) {
		t.Helper()
		select {
		case <-w.Changes():
		case err := <-w.Errors():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no change seen", what)
		}
	}

	tmp := filepath.Join(dir, "plain.yaml.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("2"), 0o644))
	require.NoError(t, os.Rename(tmp, plain))
	waitChange("rename over plain.yaml")

	version("..v2")
	require.NoError(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..v1")))
	waitChange("..data swap")

	// The target's own directory is watched now: an in-place edit is seen.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "..v2", "cfg.yaml"), []byte("edited"), 0o644))
	waitChange("edit of the resolved file")
}
