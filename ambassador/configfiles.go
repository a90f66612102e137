package ambassador

import (
	"sort"
	"strings"

	"github.com/outbound-go/outbound/discovery"
)

// checkFiles reads the files every service names (see LoadConfig), after
// check: a key check already found at fault is not read.
func (c *Config) checkFiles(lines map[string]int, ps *[]Problem) {
	ck := checker{lines: lines, ps: ps, bad: map[string]bool{}}
	for _, p := range *ps {
		ck.bad[p.Path] = true
	}
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c.Services[name].checkFiles(ck, joinKey("services", name))
	}
}

// checkFiles reads the files service s names as start-up will, so that
// -check (and LoadConfig) refuses what NewServer would: the TLS files are
// read and parsed (regular files only, each at most MaxTLSFileSize), and the
// discovery source is built as NewStack builds it (which reads and parses
// an endpoint file). Each problem is reported at the key that names the
// file. Keys with problems of their own are not read again.
func (s ServiceConfig) checkFiles(ck checker, sp string) {
	tp := join(sp, "tls")
	if s.TLS.Enabled() && !ck.covered(tp) && !hasPrefix(*ck.ps, tp) {
		readTLSMaterial(s.TLS, func(key string, err error) {
			ck.add(tp+"."+key, "%v", err)
		})
	}
	dp := join(sp, "discovery")
	srcs := s.sources()
	if len(srcs) != 1 || ck.covered(dp) || hasPrefix(*ck.ps, dp) {
		return
	}
	if _, err := discovery.FromConfig(s.Discovery); err != nil {
		for _, e := range leafErrors(err) {
			ck.add(dp+"."+srcs[0], "%s", strings.TrimPrefix(e.Error(), "discovery: "))
		}
	}
}

// hasPrefix reports whether a problem was recorded at path or under it.
func hasPrefix(ps []Problem, path string) bool {
	for _, p := range ps {
		if p.Path == path || strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[") {
			return true
		}
	}
	return false
}
