package httprule_test

import (
	"fmt"
	"net/url"
	"testing"

	"google.golang.org/protobuf/types/dynamicpb"
)

// benchRouter has 50 rules: five shapes over ten resources.
func benchRouter(b *testing.B) []method {
	var ms []method
	for i := range 10 {
		ms = append(ms,
			method{fmt.Sprintf("Get%d", i), fmt.Sprintf(`get: "/v1/res%d/{name}"`, i)},
			method{fmt.Sprintf("List%d", i), fmt.Sprintf(`get: "/v1/{parent=shelves/*}/res%d"`, i)},
			method{fmt.Sprintf("Do%d", i), fmt.Sprintf(`post: "/v1/res%d/{name}:do" body: "*"`, i)},
			method{fmt.Sprintf("Sub%d", i), fmt.Sprintf(`get: "/v1/res%d/{name}/sub/{parent}"`, i)},
			method{fmt.Sprintf("Del%d", i), fmt.Sprintf(`delete: "/v1/res%d/{name}"`, i)},
		)
	}
	return ms
}

func BenchmarkMatch(b *testing.B) {
	r := newRouter(b, benchRouter(b)...)
	for _, bc := range []struct{ name, verb, path string }{
		{"first", "GET", "/v1/res0/x"},
		{"last", "GET", "/v1/res9/x/sub/y"},
		{"multi", "GET", "/v1/shelves/s1/res9"},
		{"verb", "POST", "/v1/res9/x:do"},
		{"escaped", "GET", "/v1/res5/a%2Fb"},
		{"miss", "GET", "/v2/nothing/here"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, ok := r.Match(bc.verb, bc.path)
				if ok == (bc.name == "miss") {
					b.Fatal("unexpected result")
				}
			}
		})
	}
}

func BenchmarkMatchBind(b *testing.B) {
	r := newRouter(b, benchRouter(b)...)
	q := url.Values{"id": {"42"}, "tags": {"a", "b"}, "inner.s": {"x"}}
	m, ok := r.Match("GET", "/v1/res9/x/sub/y")
	if !ok {
		b.Fatal("no match")
	}
	in := m.Method.Input()
	b.ReportAllocs()
	for b.Loop() {
		m, _ := r.Match("GET", "/v1/res9/x/sub/y")
		if err := m.Bind(dynamicpb.NewMessage(in), q); err != nil {
			b.Fatal(err)
		}
	}
}
