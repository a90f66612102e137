package httprule

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// pathFields resolves a dotted field path of proto field names (as path
// templates and body spell them) in md.
func pathFields(md protoreflect.MessageDescriptor, path string) ([]protoreflect.FieldDescriptor, error) {
	return resolve(md, path, false)
}

// queryFields resolves a query parameter's dotted path, each element by
// proto name or JSON name.
func queryFields(md protoreflect.MessageDescriptor, path string) ([]protoreflect.FieldDescriptor, error) {
	return resolve(md, path, true)
}

func resolve(md protoreflect.MessageDescriptor, path string, jsonNames bool) ([]protoreflect.FieldDescriptor, error) {
	if path == "" {
		return nil, errors.New("empty field path")
	}
	var out []protoreflect.FieldDescriptor
	for name := range strings.SplitSeq(path, ".") {
		if len(out) > 0 {
			prev := out[len(out)-1]
			if prev.IsList() || prev.IsMap() {
				return nil, fmt.Errorf("%s is repeated or a map: cannot address its fields", prev.Name())
			}
			if md == nil {
				return nil, fmt.Errorf("%s is not a message: it has no field %q", prev.Name(), name)
			}
		}
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil && jsonNames {
			fd = md.Fields().ByJSONName(name)
		}
		if fd == nil {
			return nil, fmt.Errorf("no field %q in %s", name, md.FullName())
		}
		out = append(out, fd)
		md = fd.Message()
	}
	return out, nil
}

// wkt says how a well-known message type takes a string value.
type wktKind uint8

const (
	notWKT     wktKind = iota
	wktWrapper         // google.protobuf.*Value: the scalar into field "value"
	wktJSON            // Timestamp, Duration, FieldMask: protojson of the quoted string
)

func wellKnown(md protoreflect.MessageDescriptor) wktKind {
	switch md.FullName() {
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue",
		"google.protobuf.BytesValue":
		return wktWrapper
	case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask":
		return wktJSON
	}
	return notWKT
}

// checkScalar reports whether a value from a URL can go into fd (ignoring
// cardinality): a scalar, an enum, or a string-valued well-known type.
func checkScalar(fd protoreflect.FieldDescriptor) error {
	if fd.IsMap() {
		return fmt.Errorf("%s is a map: not settable from a URL", fd.Name())
	}
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		if wellKnown(fd.Message()) == notWKT {
			return fmt.Errorf("%s is a message (%s): name a field inside it", fd.Name(), fd.Message().FullName())
		}
	}
	return nil
}

// checkVarField: a path variable binds a singular scalar field.
func checkVarField(fd protoreflect.FieldDescriptor) error {
	if err := checkScalar(fd); err != nil {
		return err
	}
	if fd.IsList() {
		return fmt.Errorf("%s is repeated: a path variable binds one value", fd.Name())
	}
	return nil
}

// checkBodyField: a body field path ends at a singular message field, the
// message the body JSON decodes into.
func checkBodyField(fd protoreflect.FieldDescriptor) error {
	if fd.IsList() || fd.IsMap() || fd.Message() == nil {
		return fmt.Errorf("%s: the body must name a singular message field", fd.Name())
	}
	return nil
}

// joinPath spells fields as a dotted path of proto names.
func joinPath(fields []protoreflect.FieldDescriptor) string {
	var b strings.Builder
	for i, fd := range fields {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(fd.Name()))
	}
	return b.String()
}
