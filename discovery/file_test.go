package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// writeFile writes data to path the way careful writers do: to a temporary
// file in the same directory, then renamed over path.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func endpointFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
	return path
}

func TestFileRewritePickedUp(t *testing.T) {
	path := endpointFile(t, "- address: 10.0.0.1:80\n  weight: 3\n- {address: 10.0.0.2:80}\n")
	src, err := discovery.File(path)
	require.NoError(t, err)
	w := watch(t, src)
	assert.Equal(t, []discovery.Endpoint{{Address: "10.0.0.1:80", Weight: 3}, {Address: "10.0.0.2:80"}}, w.nextSet(t))

	// Atomic rename-over, in JSON this time.
	writeFile(t, path, `[{"address": "10.0.0.2:80", "weight": 1}, {"address": "10.0.0.3:80", "weight": 2}]`)
	assert.Equal(t, map[string]int{"10.0.0.2:80": 1, "10.0.0.3:80": 2}, weights(w.nextSet(t)))

	// In-place write.
	require.NoError(t, os.WriteFile(path, []byte("- address: 10.0.0.4:80\n"), 0o644))
	assert.Equal(t, []string{"10.0.0.4:80"}, addrs(w.nextSet(t)))

	// Same set, reformatted: no update.
	writeFile(t, path, "[{address: 10.0.0.4:80}]  # unchanged\n")
	require.NoError(t, os.WriteFile(path, []byte("- address: 10.0.0.5:80\n"), 0o644))
	assert.Equal(t, []string{"10.0.0.5:80"}, addrs(w.nextSet(t)), "the reformatted file caused no update of its own")
}

func TestFileMalformedRewriteKeepsLastSet(t *testing.T) {
	path := endpointFile(t, "- address: 10.0.0.1:80\n")
	src, err := discovery.File(path)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	writeFile(t, path, "- address: 10.0.0.1:80\n- address: 10.0.0.2\n  weight: 1\n")
	err = w.nextErr(t)
	var fe *discovery.FileError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, path, fe.Path)
	assert.Equal(t, 2, fe.Line)
	assert.Contains(t, fe.Msg, `[1].address: "10.0.0.2" is not host:port`)
	assert.ErrorContains(t, err, path+" line 2:")
	w.noSet(t)

	writeFile(t, path, "- address: 10.0.0.2:80\n")
	assert.Equal(t, []string{"10.0.0.2:80"}, addrs(w.nextSet(t)))
}

func TestFileRemovedThenRecreated(t *testing.T) {
	path := endpointFile(t, "- address: 10.0.0.1:80\n")
	src, err := discovery.File(path)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	require.NoError(t, os.Remove(path))
	assert.ErrorIs(t, w.nextErr(t), fs.ErrNotExist)
	w.noSet(t)

	writeFile(t, path, "- address: 10.0.0.2:80\n")
	assert.Equal(t, []string{"10.0.0.2:80"}, addrs(w.nextSet(t)))
}

func TestFileDirectoryRemovedFallsBackToPolling(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "endpoints.yaml")
	require.NoError(t, os.WriteFile(path, []byte("- address: 10.0.0.1:80\n"), 0o644))
	src, err := discovery.File(path)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	require.NoError(t, os.RemoveAll(dir))
	for {
		if err := w.nextErr(t); strings.Contains(err.Error(), "was removed or renamed; re-reading every 1s") {
			break
		}
	}
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(path, []byte("- address: 10.0.0.2:80\n"), 0o644))
	assert.Equal(t, []string{"10.0.0.2:80"}, addrs(w.nextSet(t)), "found by polling")
}

func TestFileKubernetesSymlinkSwap(t *testing.T) {
	// The layout kubelet gives a mounted ConfigMap: the file is a symlink
	// through ..data, and an update swaps ..data to a new directory.
	dir := t.TempDir()
	version := func(name, data string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "endpoints.yaml"), []byte(data), 0o644))
	}
	version("..v1", "- address: 10.0.0.1:80\n")
	require.NoError(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	require.NoError(t, os.Symlink(filepath.Join("..data", "endpoints.yaml"), filepath.Join(dir, "endpoints.yaml")))

	src, err := discovery.File(filepath.Join(dir, "endpoints.yaml"))
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	version("..v2", "- address: 10.0.0.2:80\n")
	require.NoError(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..v1")))
	assert.Equal(t, []string{"10.0.0.2:80"}, addrs(w.nextSet(t)))
}

func TestFileEmptyList(t *testing.T) {
	path := endpointFile(t, "- address: 10.0.0.1:80\n")
	src, err := discovery.File(path)
	require.NoError(t, err)
	w := watch(t, src)
	require.Equal(t, []string{"10.0.0.1:80"}, addrs(w.nextSet(t)))

	writeFile(t, path, "[]\n")
	eps := w.nextSet(t)
	assert.NotNil(t, eps)
	assert.Empty(t, eps, "an explicit [] is a deliberate empty set")
}

func TestFileMissingAtStart(t *testing.T) {
	src, err := discovery.File(filepath.Join(t.TempDir(), "nope.yaml"))
	assert.Nil(t, src)
	assert.ErrorIs(t, err, fs.ErrNotExist)

	src, err = discovery.File("")
	assert.Nil(t, src)
	assert.ErrorContains(t, err, "empty path")
}

func TestFileRejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // "LINE: message substring", one per problem
	}{
		{"missing port", "- address: 10.0.0.1\n", []string{`1: [0].address: "10.0.0.1" is not host:port: missing port in address`}},
		{"port zero", "- address: 10.0.0.1:80\n- address: 10.0.0.2:0\n", []string{`2: [1].address: "10.0.0.2:0" is not host:port: port must be a number in 1-65535, got "0"`}},
		{"port too big", "[{address: \"a:65536\"}]", []string{`1: [0].address: "a:65536"`}},
		{"named port", "- address: users:http\n", []string{`1: [0].address: "users:http"`}},
		{"empty host", "- address: \":80\"\n", []string{`1: [0].address: ":80" is not host:port: empty host`}},
		{"bad host", "- address: \"a b:80\"\n", []string{`1: [0].address: "a b:80" is not host:port: host "a b" is neither`}},
		{"negative weight", "- address: a:1\n  weight: -1\n", []string{"2: [0].weight: want an integer in 0..2147483647, got -1"}},
		{"huge weight", "- address: a:1\n  weight: 99999999999\n", []string{"2: [0].weight: want an integer in 0..2147483647, got 99999999999"}},
		{"string weight", "- address: a:1\n  weight: heavy\n", []string{`2: [0].weight: want an integer ≥ 0, got "heavy"`}},
		{"float weight", "- address: a:1\n  weight: 1.5\n", []string{`2: [0].weight: want an integer ≥ 0, got "1.5"`}},
		{"unknown key", "- address: a:1\n  wieght: 2\n", []string{`2: [0]: unknown key "wieght" (want address, weight, metadata)`}},
		{"no address", "- weight: 2\n", []string{"1: [0]: address is missing"}},
		{"null address", "- address:\n", []string{"1: [0].address: want host:port, got null"}},
		{"duplicate address", "- address: a:1\n- address: b:1\n- address: a:1\n", []string{`3: [2].address: "a:1" is already listed on line 1`}},
		{"one address in two spellings", "- address: 127.0.0.1:8080\n- address: 127.0.0.1:08080\n- address: '[::1]:80'\n- address: '[0::1]:80'\n", []string{
			`2: [1].address: "127.0.0.1:08080" is already listed on line 1`,
			`4: [3].address: "[0::1]:80" is already listed on line 3`}},
		{"duplicate key", "- {address: a:1, address: b:1}\n", []string{"1: [0].address: given twice"}},
		{"item not a map", "- a:1\n- address: b:1\n", []string{`1: [0]: want a map with address and weight, got "a:1"`}},
		{"bad metadata", "- address: a:1\n  metadata: [x]\n", []string{"2: [0].metadata: want a map of strings, got a list"}},
		{"not a list", "address: a:1\n", []string{"1: want a top-level list of {address, weight}, got a map"}},
		{"null", "null\n", []string{"1: want a top-level list of {address, weight}, got null"}},
		{"empty file", "", []string{"0: empty file"}},
		{"comments only", "# nothing yet\n", []string{"0: empty file"}},
		{"two documents", "- address: a:1\n---\n- address: b:1\n", []string{"3: more than one YAML document"}},
		{"unclosed flow list", "- address: a:1\n- address: [b:1\n", []string{"2: did not find expected ',' or ']'"}},
		{"bad indentation", "- address: a:1\n  weight: 1\n   port: 2\n", []string{"3: mapping values are not allowed in this context"}},
		{"unclosed quote", "- address: a:1\n- address: \"b:1\n", []string{"2: found unexpected end of stream"}},
		{"bad JSON", "[\n  {\"address\": \"a:1\"},\n  {\"address\": \"b:1\",}\n  {\"address\": \"c:1\"}\n]\n", []string{"3: invalid JSON: invalid character '}' looking for beginning of object key string"}},
		{"truncated JSON", "[\n  {\"address\": \"a:1\"},\n  {\"address\": \"b:1\"", []string{"3: invalid JSON: unexpected end of JSON input"}},
		{"many problems", strings.Repeat("- address: a\n", 25), append(slices.Repeat([]string{`[`}, 20), "0: and 5 more problems")},
		{"several problems", "- address: a\n- address: b:1\n  weight: -2\n", []string{`1: [0].address: "a" is not host:port`, "3: [1].weight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := endpointFile(t, tt.data)
			src, err := discovery.File(path)
			assert.Nil(t, src)
			require.Error(t, err)
			var got []string
			for _, e := range unjoin(err) {
				var fe *discovery.FileError
				require.ErrorAs(t, e, &fe)
				assert.Equal(t, path, fe.Path)
				got = append(got, fmt.Sprintf("%d: %s", fe.Line, fe.Msg))
			}
			require.Len(t, got, len(tt.want), "problems: %q", got)
			for i := range tt.want {
				assert.Contains(t, got[i], tt.want[i])
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestFileAcceptsYAMLAndJSON(t *testing.T) {
	want := []discovery.Endpoint{
		{Address: "10.0.0.1:80", Weight: 0},
		{Address: "[fd00::1]:443", Weight: 5, Metadata: map[string]string{"zone": "b"}},
		{Address: "users-1.internal:8080", Weight: 2},
	}
	for name, data := range map[string]string{
		"yaml": "# users\n- address: users-1.internal:8080\n  weight: 2\n- address: \"[fd00::1]:443\"\n  weight: 5\n  metadata: {zone: b}\n- address: 10.0.0.1:80\n  weight: 0\n",
		"json": "[\n\t{\"address\": \"users-1.internal:8080\", \"weight\": 2},\n\t{\"address\": \"[fd00::1]:443\", \"weight\": 5, \"metadata\": {\"zone\": \"b\"}},\n\t{\"address\": \"10.0.0.1:80\", \"weight\": 0}\n]\n",
	} {
		t.Run(name, func(t *testing.T) {
			src, err := discovery.File(endpointFile(t, data))
			require.NoError(t, err)
			w := watch(t, src)
			assert.Equal(t, want, w.nextSet(t))
		})
	}
}

func ExampleFile() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "endpoints.yaml")
	_ = os.WriteFile(path, []byte("- {address: 10.0.0.2:8080, weight: 1}\n- {address: 10.0.0.1:8080, weight: 3}\n"), 0o644)

	src, err := discovery.File(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	src.Watch(ctx, func(eps []discovery.Endpoint, err error) {
		for _, ep := range eps {
			fmt.Println(ep.Address, ep.Weight)
		}
		cancel() // a Service would keep watching for changes
	})

	// A malformed file is refused with its line.
	_ = os.WriteFile(path, []byte("- address: 10.0.0.1:8080\n- address: 10.0.0.2\n"), 0o644)
	_, err = discovery.File(path)
	var fe *discovery.FileError
	if errors.As(err, &fe) {
		fmt.Printf("line %d: %s\n", fe.Line, fe.Msg)
	}
	// Output:
	// 10.0.0.1:8080 3
	// 10.0.0.2:8080 1
	// line 2: [1].address: "10.0.0.2" is not host:port: missing port in address
}
