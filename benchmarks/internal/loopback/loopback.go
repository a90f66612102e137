// Package loopback keeps the benchmark programs (proxy/, soak/) on 127.0.0.1:
// they accept only loopback addresses, so no run ever reaches past the machine.
package loopback

import (
	"fmt"
	"net"
)

// Check returns an error naming addr unless it is host:port with a loopback
// IP address as the host.
func Check(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: must be a loopback IP address", addr)
	}
	return nil
}

// Listen listens on addr over TCP after Check.
func Listen(addr string) (net.Listener, error) {
	if err := Check(addr); err != nil {
		return nil, err
	}
	return net.Listen("tcp", addr)
}
