//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

// openFileLimit reports that the open-file limit is unknown here.
func openFileLimit() (uint64, bool) { return 0, false }
