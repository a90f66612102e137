package discovery

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseEtcdValue: the two value forms, the weight rules, and what is
// refused rather than turned into a wrong endpoint.
func TestParseEtcdValue(t *testing.T) {
	good := []struct {
		v    string
		want Endpoint
	}{
		{"10.0.0.1:8080", Endpoint{Address: "10.0.0.1:8080", Weight: 1}},
		{" users-1.internal:80\n", Endpoint{Address: "users-1.internal:80", Weight: 1}},
		{`{"Addr":"[fd00::1]:443","Metadata":null}`, Endpoint{Address: "[fd00::1]:443", Weight: 1}},
		{`{"Addr":"a:1","Metadata":{"weight":3,"zone":"x"}}`, Endpoint{Address: "a:1", Weight: 3}},
		{`{"Addr":"a:1","Metadata":{"weight":0}}`, Endpoint{Address: "a:1", Weight: 1}},
		{`{"Addr":"a:1","Metadata":{"weight":2e1}}`, Endpoint{Address: "a:1", Weight: 20}},
		{`{"Addr":"a:1","Metadata":"v2"}`, Endpoint{Address: "a:1", Weight: 1}},
		{`{"Addr":"a:1","Metadata":{"zone":"x"}}`, Endpoint{Address: "a:1", Weight: 1}},
		{`{"Addr":"a:1"}`, Endpoint{Address: "a:1", Weight: 1}},
	}
	for _, c := range good {
		ep, err := parseEtcdValue([]byte(c.v))
		require.NoError(t, err, c.v)
		assert.Equal(t, c.want, ep, c.v)
	}
	bad := map[string]string{
		"":                   "empty value",
		"10.0.0.1":           "want host:port",
		"http://10.0.0.1:80": "want host:port",
		"a@evil:80":          "bad character",
		`{"Addr":"a:1"`:      "not the JSON",
		`{"Metadata":{}}`:    `without "Addr"`,
		`{"Addr":"a"}`:       "Addr:",
		`{"Addr":"a:1","Metadata":{"weight":"3"}}`:  "want a number",
		`{"Addr":"a:1","Metadata":{"weight":-1}}`:   "want an integer",
		`{"Addr":"a:1","Metadata":{"weight":1.5}}`:  "want an integer",
		`{"Addr":"a:1","Metadata":{"weight":1e12}}`: "want an integer",
	}
	for v, msg := range bad {
		_, err := parseEtcdValue([]byte(v))
		if assert.Error(t, err, v) {
			assert.Contains(t, err.Error(), msg, v)
		}
	}
}

// FuzzEtcdValue: any value either parses to one endpoint with a checked
// address and a weight in 1..maxWeight, or is an error.
func FuzzEtcdValue(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1:8080", `{"Addr":"a:1","Metadata":{"weight":3}}`, `{"Addr":"a:1","Metadata":null}`,
		`{"Addr":1}`, `{"Addr":"a:1","Metadata":{"weight":1e400}}`, "{", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		ep, err := parseEtcdValue(v)
		if err != nil {
			if ep.Address != "" || ep.Weight != 0 {
				t.Fatalf("endpoint %v with error %v", ep, err)
			}
			return
		}
		if cerr := checkHostPort(ep.Address); cerr != nil {
			t.Fatalf("accepted address %q: %v", ep.Address, cerr)
		}
		if ep.Weight < 1 || ep.Weight > maxWeight {
			t.Fatalf("weight %d out of range", ep.Weight)
		}
	})
}
