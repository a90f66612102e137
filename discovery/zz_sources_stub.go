package discovery

// Temporary stand-ins for the DNS, SRV and file sources, which are built on a
// parallel branch. The lead deletes this file at merge.

import (
	"errors"
	"time"
)

var errNotBuilt = errors.New("discovery: source not built yet")

// DNS is a temporary stand-in; see the dns branch.
func DNS(hostport, resolver string, refresh time.Duration) (Source, error) {
	return nil, errNotBuilt
}

// SRV is a temporary stand-in; see the dns branch.
func SRV(name, resolver string, refresh time.Duration) (Source, error) {
	return nil, errNotBuilt
}

// File is a temporary stand-in; see the file branch.
func File(path string) (Source, error) {
	return nil, errNotBuilt
}
