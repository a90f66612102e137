package ambassador_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

func ExampleNewTransport() {
	// An upstream endpoint of the service "users".
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users answered %s", r.URL.Path)
	}))
	defer users.Close()

	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{strings.TrimPrefix(users.URL, "http://")}},
		Retry:     &retry.Config{},
		Breaker:   &breaker.Config{},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.(io.Closer).Close()
	client := &http.Client{Transport: rt}

	resp, err := client.Get("http://users/v1/profile/7")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 users answered /v1/profile/7
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
	_, err = ambassador.LoadConfig(path)
	fmt.Println(err)
	// Output:
	// listeners[1].address: address 127.0.0.1:10001 is already used by listeners[0].address (line 4)
	// listeners[1].routes[0].service: no service "pay" (line 6)
	// services.users.timeout: cannot decode "abc" as a duration (line 10)
	// services.users.retry.max_atempts: unknown key (did you mean max_attempts?) (line 12)
}
