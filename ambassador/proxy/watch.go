package proxy

import (
	"fmt"

	"github.com/outbound-go/outbound/internal/filewatch"
)

// newConfigWatcher starts watching the config file at path for -watch. The
// watcher (internal/filewatch) follows the file by name: its directory is
// watched and only events for the path and the symlinks on the way to it
// count (so an editor's rename over it and a Kubernetes ConfigMap ..data
// swap are seen, writes to other files in the directory are not); events
// less than 100ms apart are one change, and a burst that never pauses is
// still a change every second. When the directory cannot be watched it
// polls every second. A change means the file may have changed: the
// reloader compares its content.
func newConfigWatcher(path string) (*filewatch.Watcher, error) {
	w, err := filewatch.New([]string{path}, filewatch.Options{})
	if err != nil {
		return nil, fmt.Errorf("-watch %s: %w", path, err)
	}
	return w, nil
}
