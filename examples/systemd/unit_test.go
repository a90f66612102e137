// Package systemd_test keeps the systemd unit in step with the ambassador:
// a reload is a SIGHUP, a stop a SIGTERM with time to drain.
package systemd_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// parseUnit reads a unit file into section -> key -> values (a key may
// repeat). Comments and blank lines are skipped; line continuations are not
// used by the unit and so not supported.
func parseUnit(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			unit[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s:%d: %q is not KEY=VALUE", name, n, line)
			require.NotEmpty(t, section, "%s:%d: key outside a section", name, n)
			k := strings.TrimSpace(key)
			unit[section][k] = append(unit[section][k], strings.TrimSpace(value))
		}
	}
	require.NoError(t, sc.Err())
	return unit
}

func TestUnitReloadAndStop(t *testing.T) {
	svc := parseUnit(t, "ambassador.service")["Service"]
	require.NotNil(t, svc, "a [Service] section")
	assert.Equal(t, []string{"simple"}, svc["Type"])
	assert.Equal(t, []string{"/bin/kill -HUP $MAINPID"}, svc["ExecReload"])
	assert.Equal(t, []string{"SIGTERM"}, svc["KillSignal"])
	assert.Equal(t, []string{"on-failure"}, svc["Restart"])
	require.Len(t, svc["ExecStart"], 1)
	assert.Contains(t, svc["ExecStart"][0], " -config /etc/ambassador/ambassador.yaml")

	require.Len(t, svc["TimeoutStopSec"], 1)
	stop, err := time.ParseDuration(svc["TimeoutStopSec"][0])
	require.NoError(t, err, "TimeoutStopSec in Go duration syntax (e.g. 40s)")
	drain := proxy.LimitsConfig{}.DrainTimeoutOrDefault()
	assert.Greater(t, stop, drain, "TimeoutStopSec must leave the default drain_timeout time to finish")

	for _, k := range []string{"DynamicUser", "NoNewPrivileges"} {
		assert.Equal(t, []string{"yes"}, svc[k], k)
	}
	assert.Equal(t, []string{"strict"}, svc["ProtectSystem"])
	assert.NotEmpty(t, svc["LimitNOFILE"])
}
