package discovery

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultEtcdDialTimeout is EtcdConfig.DialTimeout's default.
const DefaultEtcdDialTimeout = 5 * time.Second

// EtcdConfig names the etcd cluster and key prefix of the etcd source
// (discovery.etcd). Every key under Prefix is one endpoint; see Etcd.
type EtcdConfig struct {
	// Endpoints are the etcd members' client addresses, host:port or
	// http://host:port (https:// dials TLS with the system's roots).
	Endpoints []string `yaml:"endpoints"`
	// Prefix is the key prefix, taken literally: "/services/users/" lists
	// the keys that begin with exactly that string ("/services/users"
	// would also list "/services/users2/...").
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds one listing of the prefix and the client's own
	// set-up calls; 0 means 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// validate adds every problem with c, naming its key under "etcd".
func (c *EtcdConfig) validate(add func(field, format string, args ...any)) {
	if len(c.Endpoints) == 0 {
		add("etcd.endpoints", "at least one etcd endpoint (host:port) is required")
	}
	for i, e := range c.Endpoints {
		if err := checkEtcdEndpoint(e); err != nil {
			add(fmt.Sprintf("etcd.endpoints[%d]", i), "%v", err)
		}
	}
	if c.Prefix == "" {
		add("etcd.prefix", "required: the key prefix whose keys are the endpoints, such as /services/users/")
	}
	switch {
	case c.DialTimeout < 0:
		add("etcd.dial_timeout", "must be ≥ 0, got %v", c.DialTimeout)
	case c.DialTimeout > MaxInterval:
		add("etcd.dial_timeout", "must be at most %v, got %v", MaxInterval, c.DialTimeout)
	}
}

// checkEtcdEndpoint accepts host:port, http://host:port and
// https://host:port.
func checkEtcdEndpoint(e string) error {
	hp := e
	if scheme, rest, ok := strings.Cut(e, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return fmt.Errorf("%q: scheme must be http or https, got %q", e, scheme)
		}
		hp = rest
	}
	if strings.Contains(hp, "/") {
		return fmt.Errorf("%q: want host:port or http(s)://host:port, without a path", e)
	}
	return checkHostPort(hp)
}

// Etcd returns a Source of the endpoints stored under c.Prefix in etcd. The
// value of each key is one endpoint: a bare host:port, or the JSON that
// go.etcd.io/etcd/client/v3/naming/endpoints writes,
//
//	{"Addr": "10.0.0.1:8080", "Metadata": {"weight": 3}}
//
// where a numeric Metadata.weight (an integer ≥ 0; 0 means 1) is the
// endpoint's weight and an endpoint without one has weight 1. Services
// that register with endpoints.Manager.AddEndpoint and a lease are found
// while the lease lives. A value that is neither, or a weight that is not
// such an integer, is skipped and logged through the Service's logger
// (WithLogger); the other keys still count. Two keys with one address are
// one endpoint with the sum of their weights.
//
// Etcd checks c (as Config.Validate does) and connects to nothing: Watch
// opens its own client and closes it when its context ends, so a Source
// that is never watched costs nothing.
//
// # Watching
//
// Watch lists the prefix, reports the set, then watches the prefix from the
// listed revision on, so no change between the two is lost; a put, a delete
// or an expired lease is reported as soon as etcd sends it (well within a
// second). A set is reported only when it differs from the last. While the
// connection is lost, the last set stays and the client reconnects and
// resumes the watch where it stopped; when the watch ends for any other
// reason (a compacted revision, a lost leader, an error), Watch lists the
// prefix again and watches anew, after an exponential backoff (100ms up to
// 5s) unless the cause was a compaction. Every 10s the watch asks etcd for
// its current revision (a progress notification); a revision below one
// etcd reported before means another store now answers at the address (a
// new cluster, or one restored without --bump-revision), whose changes the
// resumed watch would not see until its revision caught up, so Watch lists
// again at once. A failed listing is reported as update(nil, err), so the
// Service keeps its last set and says why.
func Etcd(c EtcdConfig) (Source, error) {
	var errs []error
	c.validate(func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Section: "discovery", Field: field, Msg: fmt.Sprintf(format, args...)})
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultEtcdDialTimeout
	}
	c.Endpoints = append([]string(nil), c.Endpoints...)
	return &etcdSource{cfg: c}, nil
}

// etcdSource is the Source Etcd returns.
type etcdSource struct {
	cfg EtcdConfig // DialTimeout set
}

// String describes the source for logs and errors.
func (s *etcdSource) String() string {
	return fmt.Sprintf("etcd %s prefix %q", strings.Join(s.cfg.Endpoints, ","), s.cfg.Prefix)
}
