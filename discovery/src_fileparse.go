package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileError is one problem in an endpoint file (see File). A file with
// several problems yields them all, joined with errors.Join; errors.As finds
// the first.
type FileError struct {
	// Path is the file's path.
	Path string
	// Line is the 1-based line of the problem; 0 when not known.
	Line int
	// Msg says what is wrong, naming the list index and key when there is
	// one, e.g. `[2].address: "10.0.0.1" is not host:port: missing port in address`.
	Msg string
}

// Error implements error: "discovery: endpoint file PATH line N: MSG".
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("discovery: endpoint file")
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	if e.Line > 0 {
		b.WriteString(" line " + strconv.Itoa(e.Line))
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// maxProblems bounds how many problems one endpoint file reports.
const maxProblems = 20

// parseEndpointFile parses a top-level YAML or JSON (a subset of YAML)
// list of {address, weight, metadata}. It returns the endpoints sorted by
// address, or every problem found as joined *FileError values.
func parseEndpointFile(data []byte) (eps []Endpoint, err error) {
	list, ferr := decodeEndpointList(data)
	if ferr != nil {
		return nil, ferr
	}
	p := fileParser{seen: make(map[string]int, len(list.Content))}
	eps = make([]Endpoint, 0, len(list.Content))
	for i, item := range list.Content {
		if ep, ok := p.item(i, item); ok {
			eps = append(eps, ep)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return sortEndpoints(eps), nil
}

// decodeEndpointList decodes data as a single YAML document and returns
// its top-level list node.
func decodeEndpointList(data []byte) (*yaml.Node, *FileError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FileError{Msg: "empty file: want a list of {address, weight}"}
		}
		return nil, syntaxError(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		return nil, &FileError{Line: line, Msg: "more than one YAML document: want a single list of {address, weight}"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(data, err)
	}
	list := &doc
	if list.Kind == yaml.DocumentNode && len(list.Content) == 1 {
		list = list.Content[0]
	}
	if list.Kind != yaml.SequenceNode {
		return nil, &FileError{Line: list.Line, Msg: "want a top-level list of {address, weight}, got " + describe(list)}
	}
	return list, nil
}

// fileParser collects the problems of one endpoint file, in file order,
// and the addresses seen so far (canonicalAddress → line) to find
// duplicates, however each is spelled.
type fileParser struct {
	problems []error
	seen     map[string]int
}

func (p *fileParser) problem(line int, format string, args ...any) {
	p.problems = append(p.problems, &FileError{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems found, at most maxProblems and a count of the
// rest, joined; nil when there are none.
func (p *fileParser) err() error {
	problems := p.problems
	if len(problems) > maxProblems {
		more := len(problems) - maxProblems
		problems = append(problems[:maxProblems], &FileError{Msg: fmt.Sprintf("and %d more problems", more)})
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	return nil
}

// item parses list item i; ok reports whether it yielded an endpoint (one
// with a valid address that is not listed before).
func (p *fileParser) item(i int, item *yaml.Node) (ep Endpoint, ok bool) {
	if item.Kind != yaml.MappingNode {
		p.problem(item.Line, "[%d]: want a map with address and weight, got %s", i, describe(item))
		return Endpoint{}, false
	}
	var hasAddress bool
	keys := make(map[string]bool, 3)
	for k := 0; k+1 < len(item.Content); k += 2 {
		key, val := item.Content[k], item.Content[k+1]
		if key.Kind != yaml.ScalarNode {
			p.problem(key.Line, "[%d]: want a key, got %s", i, describe(key))
			continue
		}
		if keys[key.Value] {
			p.problem(key.Line, "[%d].%s: given twice", i, key.Value)
			continue
		}
		keys[key.Value] = true
		if key.Value == "address" {
			hasAddress = true
		}
		p.field(i, key, val, &ep)
	}
	if !hasAddress {
		p.problem(item.Line, "[%d]: address is missing", i)
	}
	return ep, ep.Address != ""
}

// field parses the value of key in list item i into ep, or records why it
// cannot.
func (p *fileParser) field(i int, key, val *yaml.Node, ep *Endpoint) {
	switch key.Value {
	case "address":
		if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			p.problem(val.Line, "[%d].address: want host:port, got %s", i, describe(val))
			return
		}
		if _, _, err := parseEndpointAddr(val.Value); err != nil {
			p.problem(val.Line, "[%d].address: %v", i, err)
			return
		}
		ca := canonicalAddress(val.Value)
		if line, dup := p.seen[ca]; dup {
			p.problem(val.Line, "[%d].address: %q is already listed on line %d", i, val.Value, line)
			return
		}
		p.seen[ca] = val.Line
		ep.Address = val.Value
	case "weight":
		w, err := parseWeight(val)
		if err != nil {
			p.problem(val.Line, "[%d].weight: %v", i, err)
			return
		}
		ep.Weight = w
	case "metadata":
		md, err := parseMetadata(val)
		if err != nil {
			p.problem(val.Line, "[%d].metadata: %v", i, err)
			return
		}
		ep.Metadata = md
	default:
		p.problem(key.Line, "[%d]: unknown key %q (want address, weight, metadata)", i, key.Value)
	}
}

// parseWeight reads an integer weight in 0..maxWeight.
func parseWeight(n *yaml.Node) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, fmt.Errorf("want an integer ≥ 0, got %s", describe(n))
	}
	var w int64
	if err := n.Decode(&w); err != nil || w < 0 || w > maxWeight {
		return 0, fmt.Errorf("want an integer in 0..%d, got %s", maxWeight, n.Value)
	}
	return int(w), nil
}

// parseMetadata reads a map of strings to strings.
func parseMetadata(n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a map of strings, got %s", describe(n))
	}
	md := make(map[string]string, len(n.Content)/2)
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		if key.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("want a map of strings, got %s: %s", describe(key), describe(val))
		}
		if _, dup := md[key.Value]; dup {
			return nil, fmt.Errorf("key %q given twice", key.Value)
		}
		md[key.Value] = val.Value
	}
	return md, nil
}

// describe names a node's kind and, for a short scalar, its value.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	case yaml.AliasNode:
		return "an alias (not supported)"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

// parserProblems are the messages of yaml.v3's parser (not scanner)
// errors. For these, yaml.v3 v3.0.x prints the 0-based line of the
// construct being parsed (the "[" of an unclosed list, say) and omits it
// when it is 0; scanner errors carry the 1-based line of the problem. There
// is no typed syntax error to ask, so yamlError corrects by message.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// syntaxError turns a YAML syntax error in data into a *FileError with a
// 1-based line. A file that looks like JSON and is not valid JSON gets the
// exact line of encoding/json's error instead: YAML reports where the
// enclosing list began, which for JSON is usually line 1.
func syntaxError(data []byte, err error) *FileError {
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		var v any
		var se *json.SyntaxError
		if jerr := json.Unmarshal(data, &v); errors.As(jerr, &se) {
			off := min(max(se.Offset-1, 0), int64(len(data)))
			return &FileError{Line: bytes.Count(data[:off], []byte("\n")) + 1, Msg: "invalid JSON: " + se.Error()}
		}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, text
			}
		}
	}
	if slices.Contains(parserProblems, msg) {
		line++ // 0-based, and 0 when absent
	}
	return &FileError{Line: line, Msg: msg}
}
