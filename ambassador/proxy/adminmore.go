package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// adminEndpoint is one path of the admin listener, as / lists it.
type adminEndpoint struct{ path, what string }

// adminEndpoints returns the admin paths served, in the order / lists them.
func (s *Server) adminEndpoints() []adminEndpoint {
	eps := []adminEndpoint{
		{"/", "this list"},
		{"/healthz", "200 while the process runs"},
		{"/readyz", "200 when every listener is bound and every service has a ready endpoint, else 503 and what is missing"},
	}
	if s.opts.metrics != nil {
		eps = append(eps, adminEndpoint{"/metrics", "metrics (Prometheus text; OpenMetrics when asked)"})
	}
	return append(eps,
		adminEndpoint{"/status", "JSON: per service endpoints (state, requests, failures, last error), limiter buckets; per process version and config hash"},
		adminEndpoint{"/config", "the effective config as YAML, credentials redacted"},
	)
}

// serveIndex answers / (and only /) with the admin endpoints, one a line.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	for _, e := range s.adminEndpoints() {
		b.WriteString(e.path)
		b.WriteString(strings.Repeat(" ", max(1, 10-len(e.path))))
		b.WriteString(e.what)
		b.WriteByte('\n')
	}
	_, _ = w.Write([]byte(b.String()))
}

// configSource is the file a Config was loaded from.
type configSource struct {
	path   string
	sha256 string // hex of the bytes read
}

func newConfigSource(path string, data []byte) configSource {
	sum := sha256.Sum256(data)
	return configSource{path: path, sha256: hex.EncodeToString(sum[:])}
}

// loadInfo is the config a Server serves, and when it started serving it.
type loadInfo struct {
	cfg    *Config
	at     time.Time
	source configSource
}

func newLoadInfo(c *Config) *loadInfo {
	return &loadInfo{cfg: c, at: time.Now(), source: c.source}
}

// ProcessStatus is the process part of Status.
type ProcessStatus struct {
	// Version is the main module's version and VCS revision, and the Go
	// version, from runtime/debug.ReadBuildInfo.
	Version string `json:"version"`
	// ConfigFile is the config file's path; absent when the config did not
	// come from LoadConfig.
	ConfigFile string `json:"config_file,omitempty"`
	// ConfigSHA256 is the hex SHA-256 of the config file's bytes as loaded;
	// absent when the config did not come from LoadConfig.
	ConfigSHA256 string `json:"config_sha256,omitempty"`
	// LoadedAt is when the config in use was applied (start or reload).
	LoadedAt time.Time `json:"loaded_at"`
}

func (s *Server) processStatus() ProcessStatus {
	li := s.loaded.Load()
	return ProcessStatus{
		Version:      Version(),
		ConfigFile:   li.source.path,
		ConfigSHA256: li.source.sha256,
		LoadedAt:     li.at.UTC().Truncate(time.Second),
	}
}

// serveConfig answers /config with the config in use as YAML, with the
// values of credential-like keys and URL passwords replaced by "REDACTED".
// File paths (TLS keys among them) are shown as paths: their contents are
// never read here.
func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	var n yaml.Node
	if err := n.Encode(s.loaded.Load().cfg); err != nil {
		http.Error(w, "ambassador: encode config: "+err.Error(), http.StatusInternalServerError)
		return
	}
	redact(&n)
	prune(&n)
	out, err := yaml.Marshal(&n)
	if err != nil {
		http.Error(w, "ambassador: encode config: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	_, _ = w.Write(out)
}

// Redacted is what /config prints in place of a secret.
const Redacted = "REDACTED"

// secretWords mark a mapping key whose value /config redacts.
var secretWords = []string{"password", "passwd", "secret", "token", "credential", "authorization", "api_key", "apikey", "private_key"}

// redact replaces, in the tree under n, the value of every key naming a
// credential and the password of every URL with userinfo.
func redact(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			redact(c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if secretKey(k.Value) && !strings.HasSuffix(k.Value, "_file") {
				*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Redacted}
				continue
			}
			redact(v)
		}
	case yaml.ScalarNode:
		if u, err := url.Parse(n.Value); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), Redacted)
				n.Value = u.String()
			}
		}
	}
}

// prune drops, from every mapping under n, the keys whose value is null, ""
// or an empty sequence or mapping (after pruning): such a key reads back as
// if absent, except a null policy (retry: null), which would turn the policy
// on with its defaults.
func prune(n *yaml.Node) {
	for _, c := range n.Content {
		prune(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := n.Content[i+1]; !emptyNode(v) {
			kept = append(kept, n.Content[i], v)
		}
	}
	n.Content = kept
}

func emptyNode(v *yaml.Node) bool {
	switch v.Kind {
	case yaml.ScalarNode:
		return v.Tag == "!!null" || (v.Tag == "!!str" && v.Value == "")
	case yaml.SequenceNode, yaml.MappingNode:
		return len(v.Content) == 0
	}
	return false
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}
