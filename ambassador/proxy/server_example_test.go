package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// The ambassador as a library: a routing listener in front of one service.
// A request for a host that no route names is refused with no_route.
func ExampleServer() {
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users saw %s", r.URL.Path)
	}))
	defer users.Close()

	cfg, err := proxy.ParseConfig([]byte(`
admin: {address: 127.0.0.1:0}
listeners:
  - address: 127.0.0.1:0
    routes: [{host: users.internal, service: users}]
services:
  users:
    discovery: {static: [`+users.Listener.Addr().String()+`]}
`), ".")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := proxy.NewServer(cfg, proxy.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	listener := "http://" + srv.Addrs()[0].String()

	client := &http.Client{Transport: &http.Transport{}}
	for _, host := range []string{"users.internal", "example.com"} {
		req, _ := http.NewRequest(http.MethodGet, listener+"/users/42", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if reason := resp.Header.Get(proxy.HeaderError); reason != "" {
			fmt.Println(host, resp.StatusCode, reason)
			continue
		}
		fmt.Println(host, resp.StatusCode, string(body))
	}
	client.CloseIdleConnections()
	stop()
	fmt.Println("Run returned:", <-done)
	// Output:
	// users.internal 200 users saw /users/42
	// example.com 404 no_route
	// Run returned: <nil>
}

func ExampleLoadConfig() {
	dir, err := os.MkdirTemp("", "ambassador-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ambassador.yaml")
	broken := `listeners:
  - address: 127.0.0.1:10001
    service: users
  - address: 127.0.0.1:10001
    routes:
      - {path_prefix: /pay/, service: pay}
services:
  users:
    discovery: {static: [127.0.0.1:8081]}
    timeout: abc
    retry:
      max_atempts: 3
`
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	_, err = proxy.LoadConfig(path)
	fmt.Println(err)
	// Output:
	// listeners[1].address: address 127.0.0.1:10001 is already used by listeners[0].address (line 4)
	// listeners[1].routes[0].service: no service "pay" (line 6)
	// services.users.timeout: cannot decode "abc" as a duration (line 10)
	// services.users.retry.max_atempts: unknown key (did you mean max_attempts?) (line 12)
}
