package filewatch

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

func (w *Watcher) loop() {
	defer close(w.done)
	timer := time.NewTimer(w.opt.Debounce)
	timer.Stop()
	defer timer.Stop()
	var poll <-chan time.Time
	var ticker *time.Ticker
	startPolling := func() {
		w.polling, w.events, w.errs = true, nil, nil
		ticker = time.NewTicker(w.opt.PollInterval)
		poll = ticker.C
	}
	if w.polling {
		startPolling()
	}
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	var burst bool         // an event came and no change was sent since
	var deadline time.Time // when a change is sent even if events go on
	schedule := func() {
		now := time.Now()
		if !burst {
			burst, deadline = true, now.Add(w.opt.MaxDelay)
		}
		timer.Reset(min(w.opt.Debounce, deadline.Sub(now)))
	}
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.events:
			if !ok {
				w.report(fmt.Errorf("%w; re-reading every %s", errPolling, w.opt.PollInterval))
				startPolling()
				continue
			}
			name := filepath.Clean(ev.Name)
			if w.dirs[name] && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
				// The directory itself went away, and the watch with it.
				w.report(fmt.Errorf("directory %s was removed or renamed; re-reading every %s", name, w.opt.PollInterval))
				startPolling()
				continue
			}
			if w.names[name] {
				schedule()
			}
		case err, ok := <-w.errs:
			if !ok {
				w.errs = nil
				continue
			}
			// Events may have been lost: look at the files, whose
			// content says whether they changed.
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				w.report(fmt.Errorf("watch: %w", err))
			}
			schedule()
		case <-timer.C:
			burst = false
			w.rearm()
			w.send()
		case <-poll:
			w.send()
		}
	}
}

// rearm works out which directory entries lead to the files now and
// watches the resolved files' directories that are not the paths' own
// (best effort: a directory that cannot be watched is left out, as for a
// plain file).
func (w *Watcher) rearm() {
	w.names = map[string]bool{}
	want := map[string]bool{}
	for _, p := range w.paths {
		for e := range chainEntries(filepath.Dir(p), p) {
			w.names[e] = true
		}
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			w.names[resolved] = true
			if d := filepath.Dir(resolved); !w.dirs[d] {
				want[d] = true
			}
		}
	}
	if w.fsw == nil || w.polling {
		return
	}
	for d := range w.targets {
		if !want[d] {
			_ = w.fsw.Remove(d) // gone already when a ..data swap removed it
			delete(w.targets, d)
		}
	}
	for d := range want {
		if !w.targets[d] && w.fsw.Add(d) == nil {
			w.targets[d] = true
		}
	}
}
