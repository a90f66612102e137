package ambassador_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
