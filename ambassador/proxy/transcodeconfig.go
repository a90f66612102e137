package proxy

import (
	"path/filepath"
	"strconv"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy/internal/transcode"
	"github.com/outbound-go/outbound/internal/boundedfile"
)

// TranscodeConfig turns on JSON→gRPC transcoding for a listener or route
// (yaml transcode:). An absent section is off; a present one, even "{}",
// transcodes. The service must speak gRPC (protocol h2c or h2).
type TranscodeConfig struct {
	// DescriptorSet is the path of a FileDescriptorSet file (protoc
	// --include_imports -o), relative to the config file's directory,
	// read at start-up and by -check (a regular file of at most
	// MaxDescriptorSetSize bytes). "" asks the upstream's server
	// reflection on the first request instead, and again after a reload.
	DescriptorSet string `yaml:"descriptor_set"`
}

// MaxDescriptorSetSize bounds a transcode.descriptor_set file.
const MaxDescriptorSetSize = 16 << 20

// resolveTranscodePaths makes the relative descriptor_set paths of c
// relative to dir.
func resolveTranscodePaths(c *Config, dir string) {
	if dir == "" {
		return
	}
	abs := func(t *TranscodeConfig) {
		if t != nil && t.DescriptorSet != "" && !filepath.IsAbs(t.DescriptorSet) {
			t.DescriptorSet = filepath.Join(dir, t.DescriptorSet)
		}
	}
	for i := range c.Listeners {
		abs(c.Listeners[i].Transcode)
		for j := range c.Listeners[i].Routes {
			abs(c.Listeners[i].Routes[j].Transcode)
		}
	}
}

// checkTranscode checks the transcode sections of listener l (at lp) and
// of its routes: each needs one service, of protocol h2c or h2.
func (c *Config) checkTranscode(ck checker, lp string, l ListenerConfig) {
	if l.Protocol == ListenerTCP {
		return // checkTCPListener refuses transcode: there
	}
	if l.Transcode != nil {
		if len(l.Routes) > 0 {
			ck.Add(lp+".transcode", "needs service:, not routes (put transcode: on the routes)")
		} else {
			c.checkTranscodeService(ck, lp+".service", l.Service)
		}
	}
	for j, r := range l.Routes {
		if r.Transcode == nil {
			continue
		}
		rp := lp + ".routes[" + strconv.Itoa(j) + "]"
		if len(r.Split) > 0 {
			ck.Add(rp+".transcode", "needs service:, not split")
			continue
		}
		c.checkTranscodeService(ck, rp+".service", r.Service)
	}
}

func (c *Config) checkTranscodeService(ck checker, path, name string) {
	s, ok := c.Services[name]
	if !ok || ck.Covered(path) {
		return // reported already
	}
	if s.Protocol != ambassador.ProtocolH2C && s.Protocol != ambassador.ProtocolH2 {
		p := s.Protocol
		if p == "" {
			p = ambassador.ProtocolHTTP1
		}
		ck.Add(path, "transcode: needs a gRPC service (protocol h2c or h2); %q has protocol %s", name, p)
	}
}

// checkTranscodeFiles reads every descriptor_set as start-up will.
func (c *Config) checkTranscodeFiles(ck checker) {
	check := func(path string, t *TranscodeConfig) {
		if t == nil || t.DescriptorSet == "" || ck.Covered(path) {
			return
		}
		if _, err := loadDescriptorSet(t.DescriptorSet); err != nil {
			ck.Add(path, "%v", err)
		}
	}
	for i, l := range c.Listeners {
		lp := "listeners[" + strconv.Itoa(i) + "]"
		check(lp+".transcode.descriptor_set", l.Transcode)
		for j, r := range l.Routes {
			check(lp+".routes["+strconv.Itoa(j)+"].transcode.descriptor_set", r.Transcode)
		}
	}
}

// loadDescriptorSet reads and links the FileDescriptorSet at path.
func loadDescriptorSet(path string) (*transcode.Descriptors, error) {
	data, err := boundedfile.Read(path, MaxDescriptorSetSize)
	if err != nil {
		return nil, err
	}
	return transcode.ParseFileSet(data, httpRules)
}
