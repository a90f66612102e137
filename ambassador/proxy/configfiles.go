package proxy

import (
	"errors"
	"sort"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/internal/confcheck"
)

// checkFiles reads the files every service names (see LoadConfig), after
// check: a key check already found at fault is not read.
func (c *Config) checkFiles(lines map[string]int, ps *[]Problem) {
	ck := checker{Lines: lines, Ps: ps, Bad: map[string]bool{}}
	for _, p := range *ps {
		ck.Bad[p.Path] = true
	}
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		checkServiceFiles(ck, joinKey("services", name), c.Services[name])
	}
	c.checkTranscodeFiles(ck)
}

// checkServiceFiles reads the files service s names as start-up will (see
// ambassador.ServiceConfig.CheckFiles), so that -check (and LoadConfig)
// refuses what NewServer would. Each problem is reported at the key that
// names the file; the tls and discovery keys with problems of their own
// are left alone.
func checkServiceFiles(ck checker, sp string, s ambassador.ServiceConfig) {
	var skip []string
	for _, k := range []string{"tls", "discovery"} {
		if p := join(sp, k); ck.Covered(p) || confcheck.HasPrefix(*ck.Ps, p) {
			skip = append(skip, p)
		}
	}
	var ce *ConfigError
	if !errors.As(s.CheckFiles(), &ce) {
		return
	}
	for _, p := range ce.Problems {
		path := join(sp, p.Path)
		if !skipped(skip, path) {
			ck.Add(path, "%s", p.Msg)
		}
	}
}

func skipped(prefixes []string, path string) bool {
	for _, p := range prefixes {
		if confcheck.HasPrefix([]Problem{{Path: path}}, p) {
			return true
		}
	}
	return false
}
