package filewatch

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fedWatcher is a Watcher on path fed by the test's channels instead
// of fsnotify, in a synctest bubble: time moves only when every goroutine
// of the bubble is blocked, so "99ms later" is exact.
type fedWatcher struct {
	*Watcher
	events chan fsnotify.Event
	errs   chan error
}

const (
	watchDebounce = DefaultDebounce
	watchMaxDelay = DefaultMaxDelay
)

func newFedWatcher(t *testing.T, path string) *fedWatcher {
	events, errs := make(chan fsnotify.Event), make(chan error)
	w := &fedWatcher{start([]string{path}, nil, events, errs, Options{}), events, errs}
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w
}

func (w *fedWatcher) event(name string) { w.events <- fsnotify.Event{Name: name, Op: fsnotify.Write} }

// pending reports whether a change is ready to receive, and takes it.
func (w *fedWatcher) pending() bool {
	synctest.Wait()
	select {
	case <-w.Changes():
		return true
	default:
		return false
	}
}

func TestWatcherDebounces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ambassador.yaml")
	synctest.Test(t, func(t *testing.T) {
		w := newFedWatcher(t, path)

		// Ten events 99ms apart (within watchMaxDelay): one change, 100ms
		// after the last.
		for range 10 {
			w.event(path)
			elapse(watchDebounce - time.Millisecond)
			require.False(t, w.pending(), "no change while events keep coming")
		}
		elapse(time.Millisecond)
		assert.True(t, w.pending(), "one change once the file was quiet for 100ms")
		elapse(time.Second)
		assert.False(t, w.pending(), "and only one")

		// Two changes not received yet are one.
		w.event(path)
		elapse(2 * watchDebounce)
		w.event(path)
		elapse(2 * watchDebounce)
		assert.True(t, w.pending())
		assert.False(t, w.pending())

		// Events 100ms apart are two changes.
		w.event(path)
		elapse(watchDebounce)
		assert.True(t, w.pending())
		w.event(path)
		elapse(watchDebounce)
		assert.True(t, w.pending())
	})
}

// Events that never pause for 100ms still make a change every second.
func TestWatcherMaxDelay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ambassador.yaml")
	synctest.Test(t, func(t *testing.T) {
		w := newFedWatcher(t, path)
		start := time.Now()
		var at []time.Duration
		for range 3 * watchMaxDelay / (watchDebounce / 2) {
			w.event(path)
			elapse(watchDebounce / 2)
			if w.pending() {
				at = append(at, time.Since(start))
			}
		}
		assert.Equal(t, []time.Duration{watchMaxDelay, 2 * watchMaxDelay, 3 * watchMaxDelay}, at)
	})
}

func TestWatcherIgnoresOtherNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ambassador.yaml")
	synctest.Test(t, func(t *testing.T) {
		w := newFedWatcher(t, path)
		for _, name := range []string{
			filepath.Join(dir, "ambassador.log"),
			path + ".tmp",
			filepath.Join(dir, "..data"), // not a symlink on the way to path here
			dir,
			filepath.Join(dir, "sub", "ambassador.yaml"),
		} {
			w.event(name)
			elapse(time.Second)
			assert.False(t, w.pending(), "an event for %s", name)
		}
		// The same name written another way is the file.
		w.event(dir + string(filepath.Separator) + "." + string(filepath.Separator) + "ambassador.yaml")
		elapse(watchDebounce)
		assert.True(t, w.pending())
	})
}

// A watch error (the kernel's event queue overflowed) may hide a change:
// it is reported as one, and the reloader compares the bytes.
func TestWatcherErrorIsAPossibleChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ambassador.yaml")
	synctest.Test(t, func(t *testing.T) {
		w := newFedWatcher(t, path)
		w.errs <- errors.New("queue overflow")
		elapse(watchDebounce)
		assert.True(t, w.pending())
	})
}

func TestChainEntries(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	mkfile := func(p string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	// A plain file, a ConfigMap layout, a link out of the directory, a
	// link to a link in the directory, and a loop.
	mkfile(filepath.Join(dir, "plain.yaml"))
	mkfile(filepath.Join(dir, "..2026_12_01_00_00_00.1", "cfg.yaml"))
	require.NoError(t, os.Symlink("..2026_12_01_00_00_00.1", filepath.Join(dir, "..data")))
	require.NoError(t, os.Symlink(filepath.Join("..data", "cfg.yaml"), filepath.Join(dir, "cfg.yaml")))
	mkfile(filepath.Join(other, "real.yaml"))
	require.NoError(t, os.Symlink(filepath.Join(other, "real.yaml"), filepath.Join(dir, "out.yaml")))
	require.NoError(t, os.Symlink("plain.yaml", filepath.Join(dir, "hop2.yaml")))
	require.NoError(t, os.Symlink("hop2.yaml", filepath.Join(dir, "hop1.yaml")))
	require.NoError(t, os.Symlink("loop.yaml", filepath.Join(dir, "loop.yaml")))

	in := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[filepath.Join(dir, n)] = true
		}
		return m
	}
	for _, tc := range []struct {
		path string
		want map[string]bool
	}{
		{"plain.yaml", in("plain.yaml")},
		{"cfg.yaml", in("cfg.yaml", "..data")},
		{"out.yaml", in("out.yaml")},
		{"hop1.yaml", in("hop1.yaml", "hop2.yaml", "plain.yaml")},
		{"loop.yaml", in("loop.yaml")},
		{"missing.yaml", in("missing.yaml")},
	} {
		t.Run(tc.path, func(t *testing.T) {
			assert.Equal(t, tc.want, chainEntries(dir, filepath.Join(dir, tc.path)))
		})
	}
}
