package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An upstream that sends a second response nobody asked for makes
// net/http's Transport complain through the standard library's logger; in
// the process's log that is one JSON record like every other line, not a
// raw text line.
func TestStandardLibraryLogIsStructured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				// The answer, and right behind it an unsolicited one.
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
					"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
				_, _ = br.ReadByte() // until the ambassador closes it
			}()
		}
	}()
	admin, lis := freeAddr(t), freeAddr(t)
	p := runAmbassador(t, admin, oneServiceConfig(admin, lis, "users", ln.Addr().String(), "", ""), "-log-format", "json")
	c := newClient(t)
	resp, body := get(t, c, "http://"+lis+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ok", body)

	require.Eventually(t, func() bool { return strings.Contains(p.out.String(), "Unsolicited response") },
		10*time.Second, 5*time.Millisecond, "net/http's complaint never reached the log")
	var found bool
	for line := range strings.Lines(p.out.String()) {
		var rec map[string]any
		if !assert.NoError(t, json.Unmarshal([]byte(line), &rec), "not a JSON record: %q", line) {
			continue
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "Unsolicited response") {
			found = true
			assert.Equal(t, "WARN", rec["level"])
			assert.Equal(t, "go", rec["component"])
		}
	}
	assert.True(t, found)
}
