package proxy

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/internal/size"
)

// The strict decoder walks the yaml.v3 node tree against the config structs'
// yaml tags itself, instead of yaml's KnownFields (which stops at the first
// error), so that every unknown key, wrong type and bad value is reported
// with its key path and line in one pass.

const (
	maxDepth   = 64
	maxAliases = 1000
)

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	sizeType        = reflect.TypeOf(size.Size(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	plainKeyRE      = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

type decoder struct {
	problems []Problem
	// lines maps every key path seen to the line of its key (or list item).
	lines   map[string]int
	aliases int
}

func newDecoder() *decoder { return &decoder{lines: map[string]int{}} }

func reflectValueOf(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func joinKey(path, key string) string {
	if !plainKeyRE.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an unsupported node"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// resolve follows aliases, bounding their number against alias bombs.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliases {
			d.add(path, n.Line, "too many YAML aliases")
			return nil
		}
		n = n.Alias
	}
	return n
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n = d.resolve(n, path); n == nil {
		return
	}
	if depth > maxDepth {
		d.add(path, n.Line, "nested too deeply")
		return
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		// A present section, even a bare key (null), means "with defaults".
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		if isNull(n) {
			return
		}
		d.decode(n, v.Elem(), path, depth+1)
		return
	}
	if isNull(n) {
		return
	}
	switch {
	case t == durationType:
		d.decodeDuration(n, v, path)
		return
	case t == sizeType:
		d.decodeSize(n, v, path)
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.add(path, n.Line, "%s", cleanYAMLError(err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Map:
		d.decodeMap(n, v, path, depth)
	case reflect.Slice:
		d.decodeSlice(n, v, path, depth)
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Float32, reflect.Float64:
		d.decodeScalar(n, v, path)
	default:
		d.add(path, n.Line, "cannot decode into %s", t)
	}
}

// decodeScalar decodes a string, boolean, integer or float scalar into v.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.add(path, n.Line, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.add(path, n.Line, "cannot decode %s as a boolean", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.add(path, n.Line, "cannot decode %s as an integer", kindName(n))
			return
		}
		if v.OverflowInt(i) {
			d.add(path, n.Line, "%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.add(path, n.Line, "cannot decode %s as a number", kindName(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || v.OverflowFloat(f) {
			d.add(path, n.Line, "must be a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "expected a duration such as \"250ms\", got %s", kindName(n))
		return
	}
	if n.ShortTag() == "!!int" && n.Value == "0" {
		v.SetInt(0)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		if n.ShortTag() == "!!int" {
			d.add(path, n.Line, "cannot decode %s as a duration: missing unit, e.g. \"%ss\"", kindName(n), n.Value)
			return
		}
		d.add(path, n.Line, "cannot decode %s as a duration", kindName(n))
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeSize(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "expected a size such as \"1MiB\" or a number of bytes, got %s", kindName(n))
		return
	}
	s, err := size.Parse(n.Value)
	if err != nil {
		d.add(path, n.Line, "cannot decode %s as a size: %s", kindName(n), strings.TrimPrefix(err.Error(), fmt.Sprintf("invalid size %q: ", n.Value)))
		return
	}
	v.SetInt(int64(s))
}

// cleanYAMLError strips yaml's "yaml: " and "line N: " prefixes, which the
// Problem carries separately.
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i > 0 {
			msg = msg[i+2:]
		}
	}
	return msg
}

type pair struct{ key, value *yaml.Node }

// pairs returns the key/value pairs of a mapping node with YAML merge keys
// ("<<") expanded: explicit keys win over merged ones. Duplicate explicit
// keys are reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var explicit, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val, path, depth+1)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "keys must be strings, got %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(joinKey(path, k.Value), k.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		explicit = append(explicit, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key.Line
			explicit = append(explicit, p)
		}
	}
	return explicit
}

func (d *decoder) mergePairs(n *yaml.Node, path string, depth int) []pair {
	if n = d.resolve(n, path); n == nil {
		return nil
	}
	if depth > maxDepth {
		d.add(path, n.Line, "nested too deeply")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.pairs(n, path, depth)
	case yaml.SequenceNode:
		var out []pair
		// Earlier mappings in a merge list win over later ones.
		have := map[string]bool{}
		for _, m := range n.Content {
			for _, p := range d.mergePairs(m, path, depth+1) {
				if !have[p.key.Value] {
					have[p.key.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.add(path, n.Line, "a merge key (<<) needs a mapping or a list of mappings, got %s", kindName(n))
	return nil
}

type fieldInfo struct {
	index []int
	name  string
}

// fields lists the yaml keys of struct type t, following inline fields.
func fields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for _, sub := range fields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, fieldInfo{index: []int{i}, name: name})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "expected a mapping, got %s", kindName(n))
		return
	}
	fs := fields(v.Type())
	for _, p := range d.pairs(n, path, depth) {
		key := p.key.Value
		kp := joinKey(path, key)
		d.lines[kp] = p.key.Line
		var fi *fieldInfo
		for i := range fs {
			if fs[i].name == key {
				fi = &fs[i]
				break
			}
		}
		if fi == nil {
			if s := suggest(key, fs); s != "" {
				d.add(kp, p.key.Line, "unknown key (did you mean %s?)", s)
			} else {
				d.add(kp, p.key.Line, "unknown key")
			}
			continue
		}
		d.decode(p.value, v.FieldByIndex(fi.index), kp, depth+1)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "expected a mapping, got %s", kindName(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.add(path, n.Line, "cannot decode into %s", t)
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, p := range d.pairs(n, path, depth) {
		kp := joinKey(path, p.key.Value)
		d.lines[kp] = p.key.Line
		elem := reflect.New(t.Elem()).Elem()
		d.decode(p.value, elem, kp, depth+1)
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.add(path, n.Line, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := path + "[" + strconv.Itoa(i) + "]"
		d.lines[ip] = item.Line
		d.decode(item, s.Index(i), ip, depth+1)
	}
	v.Set(s)
}

// suggest returns the known key closest to key when it is a likely typo.
func suggest(key string, fs []fieldInfo) string {
	best, bestD := "", 3
	for _, f := range fs {
		if dist := editDistance(key, f.name); dist < bestD {
			best, bestD = f.name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
