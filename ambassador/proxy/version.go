package proxy

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the running binary's version line, the one the ambassador's
// -version prints and /status reports: "ambassador <module version> <go
// version>". The module version is the one `go install ...@version`
// stamped; a binary built from a checkout reports "(devel)", or, when the
// build recorded the VCS revision, v0.0.0-devel+<12-hex revision> (with
// ".dirty" if the work tree had changes), so the line keeps three fields.
func Version() string { return versionOnce() }

var versionOnce = sync.OnceValue(func() string {
	version, goVersion := "(devel)", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = moduleVersion(bi)
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	return "ambassador " + version + " " + goVersion
})

// moduleVersion is bi's main module version, or the devel form with the
// VCS revision.
func moduleVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ".dirty"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	return "v0.0.0-devel+" + rev[:min(12, len(rev))] + dirty
}
