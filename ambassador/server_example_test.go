package ambassador_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/outbound-go/outbound/ambassador"
)

// The ambassador as a library: a routing listener in front of one service.
// A request for a host that no route names is refused with no_route.
func ExampleServer() {
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users saw %s", r.URL.Path)
	}))
	defer users.Close()

	cfg, err := ambassador.ParseConfig([]byte(`
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
	srv, err := ambassador.NewServer(cfg, ambassador.WithServerLogger(slog.New(slog.DiscardHandler)))
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
		if reason := resp.Header.Get(ambassador.HeaderError); reason != "" {
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
