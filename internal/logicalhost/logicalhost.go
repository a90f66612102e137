// Package logicalhost decides whether a URL's host names a service's
// logical host, the one rule the ambassador's Stack and discovery's
// RoundTripper share: http://USERS/x, http://users:80/x and
// https://users:443/x are all the service "users"; http://users:8080/x is
// another destination (the service's endpoints have their own ports, so an
// explicit port other than the scheme's default names something else).
package logicalhost

import "strings"

// Match reports whether host (a URL's host or a Host header, maybe with a
// port) names the logical host name under scheme: equal ignoring case,
// with no port or the scheme's default one (80 for http, 443 for https).
func Match(scheme, host, name string) bool {
	if host == name || strings.EqualFold(host, name) {
		return true
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return false // no port (an IPv6 literal's colons are inside brackets)
	}
	switch port := host[i+1:]; {
	case port == "80" && strings.EqualFold(scheme, "http"):
	case port == "443" && strings.EqualFold(scheme, "https"):
	default:
		return false
	}
	return strings.EqualFold(host[:i], name)
}
