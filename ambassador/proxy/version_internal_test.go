package proxy

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

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
