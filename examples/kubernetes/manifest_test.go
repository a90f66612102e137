// Package kubernetes_test keeps the Kubernetes example deployable: it loads
// deployment.yaml, runs the ambassador config in its ConfigMap through
// proxy.LoadConfig (what ambassador -check runs) and checks that the
// sidecar's probes, arguments, mount and shutdown timing agree with it.
package kubernetes_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// object is the part of a Kubernetes object the test reads.
type object struct {
	Kind     string                `yaml:"kind"`
	Metadata struct{ Name string } `yaml:"metadata"`
	Data     map[string]string     `yaml:"data"`
	Spec     struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int64 `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"` // a number or a container port's name
	} `yaml:"httpGet"`
}

// loadManifest decodes every document of deployment.yaml.
func loadManifest(t *testing.T) []object {
	t.Helper()
	data, err := os.ReadFile("deployment.yaml")
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var objs []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err)
		objs = append(objs, o)
	}
}

// sidecar is what the test found: the pod, its ambassador container, the
// config file path the container is given and that file's text.
type sidecar struct {
	pod        podSpec
	amb        container
	configPath string
	configText string
}

func findSidecar(t *testing.T) sidecar {
	t.Helper()
	objs := loadManifest(t)
	configMaps := map[string]map[string]string{}
	var pods []podSpec
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Deployment":
			pods = append(pods, o.Spec.Template.Spec)
		}
	}
	require.Len(t, pods, 1, "one Deployment")
	var s sidecar
	s.pod = pods[0]
	for _, c := range s.pod.Containers {
		if c.Name == "ambassador" {
			s.amb = c
		}
	}
	require.Equal(t, "ambassador", s.amb.Name, "the pod has an ambassador container")
	s.configPath = flagValue(t, s.amb.Args, "-config")
	assert.Contains(t, s.amb.Args, "-watch", "the sidecar reloads when the ConfigMap changes")

	// The -config path lies in a volume mount of a ConfigMap volume; the
	// file name is the ConfigMap's key.
	for _, m := range s.amb.VolumeMounts {
		if path.Dir(s.configPath) != path.Clean(m.MountPath) {
			continue
		}
		assert.Empty(t, m.SubPath, "a subPath mount is never updated, so -watch would see nothing")
		for _, v := range s.pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				data, ok := configMaps[v.ConfigMap.Name]
				require.True(t, ok, "ConfigMap %q is in the manifest", v.ConfigMap.Name)
				s.configText, ok = data[path.Base(s.configPath)]
				require.True(t, ok, "ConfigMap %q has key %q", v.ConfigMap.Name, path.Base(s.configPath))
			}
		}
	}
	require.NotEmpty(t, s.configText, "-config %s is a file of a mounted ConfigMap", s.configPath)
	return s
}

// flagValue returns the argument after name in args.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	require.Failf(t, "missing flag", "args %q have no %s FILE", args, name)
	return ""
}

// loadConfig writes the ConfigMap's config to a temp dir and loads it as
// the sidecar will.
func loadConfig(t *testing.T, s sidecar) *proxy.Config {
	t.Helper()
	file := filepath.Join(t.TempDir(), path.Base(s.configPath))
	require.NoError(t, os.WriteFile(file, []byte(s.configText), 0o600))
	cfg, err := proxy.LoadConfig(file)
	require.NoError(t, err, "the ConfigMap's ambassador config must load clean")
	return cfg
}

func TestManifestConfigLoads(t *testing.T) {
	s := findSidecar(t)
	cfg := loadConfig(t, s)
	assert.NotEmpty(t, cfg.Listeners)
}

// probePort resolves a probe's port, a number or a container port's name.
func probePort(t *testing.T, c container, p *probe) string {
	t.Helper()
	require.NotNil(t, p)
	require.NotNil(t, p.HTTPGet, "an httpGet probe")
	port := p.HTTPGet.Port.Value
	if _, err := strconv.Atoi(port); err == nil {
		return port
	}
	for _, cp := range c.Ports {
		if cp.Name == port {
			return strconv.Itoa(cp.ContainerPort)
		}
	}
	require.Failf(t, "unknown port", "probe port %q is not a port of container %q", port, c.Name)
	return ""
}

func TestManifestProbesUseAdminPort(t *testing.T) {
	s := findSidecar(t)
	cfg := loadConfig(t, s)
	host, adminPort, err := net.SplitHostPort(cfg.AdminAddress())
	require.NoError(t, err)
	assert.NotContains(t, []string{"127.0.0.1", "localhost", "::1"}, host,
		"the kubelet probes the pod IP, so the admin listener cannot be loopback only")

	assert.Equal(t, "/readyz", s.amb.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, adminPort, probePort(t, s.amb, s.amb.ReadinessProbe), "readiness probe port")
	assert.Equal(t, "/healthz", s.amb.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, adminPort, probePort(t, s.amb, s.amb.LivenessProbe), "liveness probe port")
}

// shutdownDelay reads limits.shutdown_delay from the config text, 0 when
// absent: the key is read from the YAML so this check holds whether or not
// proxy.LimitsConfig has the field.
func shutdownDelay(t *testing.T, text string) time.Duration {
	t.Helper()
	var raw struct {
		Limits struct {
			ShutdownDelay string `yaml:"shutdown_delay"`
		} `yaml:"limits"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(text), &raw))
	if raw.Limits.ShutdownDelay == "" {
		return 0
	}
	d, err := time.ParseDuration(raw.Limits.ShutdownDelay)
	require.NoError(t, err, "limits.shutdown_delay")
	return d
}

func TestManifestShutdownFitsGracePeriod(t *testing.T) {
	s := findSidecar(t)
	cfg := loadConfig(t, s)
	require.NotNil(t, s.pod.TerminationGracePeriodSeconds, "set terminationGracePeriodSeconds explicitly")
	grace := time.Duration(*s.pod.TerminationGracePeriodSeconds) * time.Second

	var preStop time.Duration
	if ps := s.amb.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
		preStop = time.Duration(ps.Sleep.Seconds) * time.Second
	}
	delay := shutdownDelay(t, s.configText)
	assert.True(t, preStop > 0 || delay > 0,
		"a preStop sleep or limits.shutdown_delay keeps the sidecar serving while the app shuts down")
	need := preStop + delay + cfg.Limits.DrainTimeoutOrDefault()
	assert.Less(t, need, grace,
		"preStop %v + shutdown_delay %v + drain_timeout %v must end before the kubelet's SIGKILL at %v",
		preStop, delay, cfg.Limits.DrainTimeoutOrDefault(), grace)
}
