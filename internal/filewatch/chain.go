package filewatch

import (
	"os"
	"path/filepath"
	"strings"
)

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
