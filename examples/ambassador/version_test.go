package main

import (
	"regexp"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionFlag(t *testing.T) {
	p := startProc(t, "-version")
	require.Equal(t, 0, p.exitCode(t, 15*time.Second))
	// Three fields; the test binary is built from this checkout, so the
	// version is go build's VCS pseudo-version or one of the devel forms.
	re := regexp.MustCompile(`^ambassador (v\d+\.\d+\.\d+\S*|\(devel\)) go1\.\d+\S*\n$`)
	assert.Regexp(t, re, p.out.String())
}

func TestModuleVersion(t *testing.T) {
	for name, c := range map[string]struct {
		bi   debug.BuildInfo
		want string
	}{
		"go install @version": {debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		"no vcs":              {debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		"revision": {debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, "v0.0.0-devel+0123456789ab"},
		"dirty": {debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc1234"}, {Key: "vcs.modified", Value: "true"}}}, "v0.0.0-devel+abc1234.dirty"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, c.want, moduleVersion(&c.bi))
		})
	}
}
