package httprule_test

import (
	"fmt"
	"net/url"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/outbound-go/outbound/internal/httprule"
)

// A service whose GetBook carries `option (google.api.http) = {get:
// "/v1/{name=shelves/*/books/*}"}`: the request's path fills name, the
// query the other fields.
func Example() {
	fdp := &descriptorpb.FileDescriptorProto{}
	if err := prototext.Unmarshal([]byte(`
		name: "shop.proto" package: "shop" syntax: "proto3"
		message_type { name: "GetBookRequest"
			field { name: "name" number: 1 type: TYPE_STRING }
			field { name: "page_size" number: 2 type: TYPE_INT32 } }
		message_type { name: "Book" field { name: "name" number: 1 type: TYPE_STRING } }
		service { name: "Shop" method { name: "GetBook" input_type: ".shop.GetBookRequest" output_type: ".shop.Book"
			options { [google.api.http] { get: "/v1/{name=shelves/*/books/*}" } } } }`), fdp); err != nil {
		panic(err)
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		panic(err)
	}
	router, err := httprule.NewRouter([]protoreflect.ServiceDescriptor{fd.Services().Get(0)})
	if err != nil {
		panic(err)
	}

	m, ok := router.Match("GET", "/v1/shelves/s1/books/b%201")
	fmt.Println(ok, m.Method.FullName(), m.Pattern)
	req := dynamicpb.NewMessage(m.Method.Input())
	if err := m.Bind(req, url.Values{"pageSize": {"20"}}); err != nil {
		panic(err)
	}
	fields := req.Descriptor().Fields()
	fmt.Println(req.Get(fields.ByName("name")), req.Get(fields.ByName("page_size")))

	err = m.Bind(dynamicpb.NewMessage(m.Method.Input()), url.Values{"page_size": {"many"}})
	fmt.Println(err)
	// Output:
	// true shop.Shop.GetBook /v1/{name=shelves/*/books/*}
	// shelves/s1/books/b 1 20
	// query parameter "page_size": value "many": not a decimal int32
}
