package httprule

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// BindError is a path variable or query parameter that does not fit the
// request message. The proxy answers it with 400 bad_request; its text
// names the field and the value.
type BindError struct {
	// Query is true for a query parameter, false for a path variable.
	Query bool
	// Field is the variable's field path or the query parameter's name.
	Field string
	// Value is the value at fault; "" when the parameter itself is refused.
	Value string
	// Err says what is wrong.
	Err error
}

// Error names the parameter, the value and what is wrong with it.
func (e *BindError) Error() string {
	what := "path variable"
	if e.Query {
		what = "query parameter"
	}
	if e.Value == "" {
		return fmt.Sprintf("%s %q: %v", what, e.Field, e.Err)
	}
	return fmt.Sprintf("%s %q: value %q: %v", what, e.Field, e.Value, e.Err)
}

// Unwrap returns Err.
func (e *BindError) Unwrap() error { return e.Err }

// Bind fills msg, a message of Method.Input() (a dynamicpb message as a
// rule), from the path variables, then from the query parameters, per the
// google.api.http rules. Decode the body into BodyTarget(msg) first:
// protojson resets the message it fills, and path variables win over the
// body.
//
// A query parameter names a field path, each element by its proto or its
// JSON name ("inner.item_count" or "inner.itemCount"); it
// may not name a field bound by the path or inside the body field, nor
// be given at all when the body is "*". Repeated scalar fields take every
// value of their key; other fields exactly one. Maps and repeated
// messages cannot be set from the query. Values: strings as they are,
// bools as strconv.ParseBool reads them, integers and floats in decimal,
// bytes in base64 (standard or URL-safe, padded or not), enums by name or
// number, wrappers (google.protobuf.Int64Value, ...) as their scalar,
// Timestamp, Duration and FieldMask in their JSON string forms. Every
// error is a *BindError.
func (m Match) Bind(msg protoreflect.Message, query url.Values) error {
	ru, err := m.check(msg)
	if err != nil {
		return err
	}
	for i, v := range ru.vars {
		raw := m.vals[i]
		val, err := decodeValue(raw, v.multi)
		if err != nil {
			return &BindError{Field: v.name, Value: raw, Err: errors.New("invalid percent-encoding")}
		}
		if bad, err := setField(msg, v.fields, []string{val}); err != nil {
			return &BindError{Field: v.name, Value: bad, Err: err}
		}
	}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := ru.bindQuery(msg, k, query[k]); err != nil {
			return err
		}
	}
	return nil
}

func (ru *rule) bindQuery(msg protoreflect.Message, key string, vals []string) error {
	refuse := func(err error) error { return &BindError{Query: true, Field: key, Err: err} }
	if ru.body == "*" {
		return refuse(errors.New(`not allowed: the body ("*") carries every field the path does not`))
	}
	fields, err := queryFields(msg.Descriptor(), key)
	if err != nil {
		return refuse(err)
	}
	path := joinPath(fields)
	for _, v := range ru.vars {
		if overlaps(path, v.name) {
			return refuse(fmt.Errorf("field %s is bound by the path", v.name))
		}
	}
	if ru.body != "" && overlaps(path, ru.body) {
		return refuse(fmt.Errorf("field %s is in the body", ru.body))
	}
	if bad, err := setField(msg, fields, vals); err != nil {
		return &BindError{Query: true, Field: key, Value: bad, Err: err}
	}
	return nil
}

// overlaps reports whether one field path is the other or inside it.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// BodyTarget returns the message the request body's JSON decodes into:
// msg itself for body "*", the (created) message field for a body field
// path, and nil for a rule without a body (the caller then ignores or
// refuses a request body).
func (m Match) BodyTarget(msg protoreflect.Message) (protoreflect.Message, error) {
	ru, err := m.check(msg)
	if err != nil {
		return nil, err
	}
	switch ru.body {
	case "":
		return nil, nil
	case "*":
		return msg, nil
	}
	cur := msg
	for _, fd := range ru.bodyPath {
		if err := checkOneof(cur, fd); err != nil {
			return nil, fmt.Errorf("body %q: %w", ru.body, err)
		}
		cur = cur.Mutable(fd).Message()
	}
	return cur, nil
}

func (m Match) check(msg protoreflect.Message) (*rule, error) {
	if m.rule == nil {
		return nil, errors.New("httprule: use of a Match that Router.Match did not return")
	}
	if msg == nil || msg.Descriptor().FullName() != m.rule.method.Input().FullName() {
		return nil, fmt.Errorf("httprule: %s takes a %s message", m.rule.method.FullName(), m.rule.method.Input().FullName())
	}
	return m.rule, nil
}

// setField sets the field at the end of fields (creating the messages on
// the way) from vals; on error it returns the value at fault.
func setField(msg protoreflect.Message, fields []protoreflect.FieldDescriptor, vals []string) (string, error) {
	cur := msg
	for _, fd := range fields[:len(fields)-1] {
		if err := checkOneof(cur, fd); err != nil {
			return "", err
		}
		cur = cur.Mutable(fd).Message()
	}
	leaf := fields[len(fields)-1]
	if err := checkScalar(leaf); err != nil {
		return "", err
	}
	if leaf.IsList() {
		if leaf.Message() != nil {
			return "", fmt.Errorf("%s is a repeated message: not settable from a URL", leaf.Name())
		}
		list := cur.Mutable(leaf).List()
		for _, s := range vals {
			v, err := parseValue(cur, leaf, s)
			if err != nil {
				return s, err
			}
			list.Append(v)
		}
		return "", nil
	}
	if len(vals) != 1 {
		return "", fmt.Errorf("%d values for a field that is not repeated", len(vals))
	}
	if err := checkOneof(cur, leaf); err != nil {
		return vals[0], err
	}
	v, err := parseValue(cur, leaf, vals[0])
	if err != nil {
		return vals[0], err
	}
	cur.Set(leaf, v)
	return "", nil
}

// checkOneof refuses to set fd when another member of its oneof is set
// (setting it would silently clear that one).
func checkOneof(m protoreflect.Message, fd protoreflect.FieldDescriptor) error {
	od := fd.ContainingOneof()
	if od == nil || od.IsSynthetic() {
		return nil
	}
	if w := m.WhichOneof(od); w != nil && w.Number() != fd.Number() {
		return fmt.Errorf("oneof %s already has %s set", od.Name(), w.Name())
	}
	return nil
}

// parseValue reads one value of fd's kind from s.
func parseValue(m protoreflect.Message, fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch k := fd.Kind(); k {
	case protoreflect.StringKind:
		if !utf8.ValidString(s) {
			return protoreflect.Value{}, errors.New("not valid UTF-8")
		}
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return protoreflect.Value{}, errors.New("not a bool (true or false)")
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.BytesKind:
		return parseBytes(s)
	case protoreflect.EnumKind:
		return parseEnum(fd.Enum(), s)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return parseWellKnown(m, fd, s)
	default:
		return parseNumber(k, s)
	}
}

func parseNumber(k protoreflect.Kind, s string) (protoreflect.Value, error) {
	var v protoreflect.Value
	var err error
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		var n int64
		n, err = strconv.ParseInt(s, 10, 32)
		v = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		var n int64
		n, err = strconv.ParseInt(s, 10, 64)
		v = protoreflect.ValueOfInt64(n)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		var n uint64
		n, err = strconv.ParseUint(s, 10, 32)
		v = protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		var n uint64
		n, err = strconv.ParseUint(s, 10, 64)
		v = protoreflect.ValueOfUint64(n)
	case protoreflect.FloatKind:
		var f float64
		f, err = strconv.ParseFloat(s, 32)
		v = protoreflect.ValueOfFloat32(float32(f))
	case protoreflect.DoubleKind:
		var f float64
		f, err = strconv.ParseFloat(s, 64)
		v = protoreflect.ValueOfFloat64(f)
	default:
		return v, fmt.Errorf("fields of kind %s are not settable from a URL", k)
	}
	if errors.Is(err, strconv.ErrRange) {
		return v, fmt.Errorf("out of range for %s", k)
	}
	if err != nil {
		return v, fmt.Errorf("not a decimal %s", k)
	}
	return v, nil
}

func parseBytes(s string) (protoreflect.Value, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return protoreflect.ValueOfBytes(b), nil
		}
	}
	return protoreflect.Value{}, errors.New("not base64 (standard or URL-safe)")
}

func parseEnum(ed protoreflect.EnumDescriptor, s string) (protoreflect.Value, error) {
	if ev := ed.Values().ByName(protoreflect.Name(s)); ev != nil {
		return protoreflect.ValueOfEnum(ev.Number()), nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || (ed.IsClosed() && ed.Values().ByNumber(protoreflect.EnumNumber(n)) == nil) {
		return protoreflect.Value{}, fmt.Errorf("not a value of enum %s", ed.FullName())
	}
	return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
}

// parseWellKnown reads a wrapper as its scalar, and Timestamp, Duration
// and FieldMask by protojson from their JSON string form.
func parseWellKnown(m protoreflect.Message, fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	nm := m.NewField(fd).Message()
	switch wellKnown(fd.Message()) {
	case wktWrapper:
		vfd := nm.Descriptor().Fields().ByName("value")
		v, err := parseValue(nm, vfd, s)
		if err != nil {
			return protoreflect.Value{}, err
		}
		nm.Set(vfd, v)
	case wktJSON:
		b, err := json.Marshal(s)
		if err == nil {
			err = protojson.Unmarshal(b, nm.Interface())
		}
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("not a %s in its JSON form", fd.Message().Name())
		}
	default:
		return protoreflect.Value{}, fmt.Errorf("%s is a message: name a field inside it", fd.Name())
	}
	return protoreflect.ValueOfMessage(nm), nil
}
