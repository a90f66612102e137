package transcode

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Descriptors are the services a transcoder can call: every method by its
// gRPC path ("/pkg.Service/Method"), the message types for protojson (Any
// included), and the google.api.http rules when a RuleBuilder made them.
// A Descriptors is immutable and safe for concurrent use.
type Descriptors struct {
	methods  map[string]protoreflect.MethodDescriptor
	services []protoreflect.ServiceDescriptor
	types    *dynamicpb.Types
	rules    Rules
}

// Rules matches HTTP requests to methods by their google.api.http
// bindings. Package internal/httprule provides one; a nil Rules matches
// nothing but the gRPC-style paths.
type Rules interface {
	// Match returns the binding of verb and the escaped path
	// (URL.EscapedPath), if any.
	Match(verb, path string) (RuleMatch, bool)
}

// RuleMatch is one matched google.api.http binding.
type RuleMatch struct {
	// Method is the method the binding calls.
	Method protoreflect.MethodDescriptor
	// Body is "" (no body), "*" (the whole request message) or the field
	// path the body fills.
	Body string
	// ResponseBody is "" (the whole response) or the field of the response
	// to answer with.
	ResponseBody string
	// Bind fills msg from the path variables and the query parameters,
	// after the body was decoded (path variables win over the body).
	Bind func(msg protoreflect.Message, query url.Values) error
	// BodyTarget returns the message of msg the body decodes into, for
	// Body not "" or "*"; nil means msg.
	BodyTarget func(msg protoreflect.Message) (protoreflect.Message, error)
}

// RuleBuilder builds the Rules of a set of services.
type RuleBuilder func([]protoreflect.ServiceDescriptor) (Rules, error)

// ErrBadDescriptors marks descriptors that cannot be used: a file set that
// does not parse, a file whose imports are missing, a conflict.
var ErrBadDescriptors = errors.New("transcode: bad descriptors")

// ParseFileSet builds Descriptors from a serialized FileDescriptorSet, as
// protoc --include_imports -o writes it. Every import must be in the set.
// Errors wrap ErrBadDescriptors.
func ParseFileSet(data []byte, rb RuleBuilder) (*Descriptors, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: not a FileDescriptorSet: %v", ErrBadDescriptors, err)
	}
	if len(set.File) == 0 {
		return nil, fmt.Errorf("%w: the FileDescriptorSet has no files", ErrBadDescriptors)
	}
	return newDescriptors(set.File, rb)
}

// newDescriptors links files (in any order) and indexes their services.
func newDescriptors(files []*descriptorpb.FileDescriptorProto, rb RuleBuilder) (*Descriptors, error) {
	reg, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptors, err)
	}
	d := &Descriptors{methods: map[string]protoreflect.MethodDescriptor{}, types: dynamicpb.NewTypes(reg)}
	reg.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			if strings.HasPrefix(string(sd.FullName()), "grpc.reflection.") {
				continue
			}
			d.services = append(d.services, sd)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				d.methods["/"+string(sd.FullName())+"/"+string(md.Name())] = md
			}
		}
		return true
	})
	if rb != nil && len(d.services) > 0 {
		if d.rules, err = rb(d.services); err != nil {
			return nil, fmt.Errorf("%w: google.api.http: %v", ErrBadDescriptors, err)
		}
	}
	return d, nil
}

// Method returns the method of a gRPC path ("/pkg.Service/Method").
func (d *Descriptors) Method(path string) (protoreflect.MethodDescriptor, bool) {
	md, ok := d.methods[path]
	return md, ok
}

// Services returns the services of d, reflection's own left out.
func (d *Descriptors) Services() []protoreflect.ServiceDescriptor { return d.services }

// resolver is what protojson needs to read and write Any: d's types, then
// the linked-in ones (google.rpc error details, well-known types).
type resolver struct{ d *dynamicpb.Types }

func (r resolver) FindMessageByName(n protoreflect.FullName) (protoreflect.MessageType, error) {
	if mt, err := r.d.FindMessageByName(n); err == nil {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByName(n)
}

func (r resolver) FindMessageByURL(u string) (protoreflect.MessageType, error) {
	if mt, err := r.d.FindMessageByURL(u); err == nil {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByURL(u)
}

func (r resolver) FindExtensionByName(n protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if xt, err := r.d.FindExtensionByName(n); err == nil {
		return xt, nil
	}
	return protoregistry.GlobalTypes.FindExtensionByName(n)
}

func (r resolver) FindExtensionByNumber(m protoreflect.FullName, f protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	if xt, err := r.d.FindExtensionByNumber(m, f); err == nil {
		return xt, nil
	}
	return protoregistry.GlobalTypes.FindExtensionByNumber(m, f)
}
