package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// etcdEndpointJSON is the value endpoints.Manager writes: the JSON of its
// Endpoint{Addr string; Metadata any}.
type etcdEndpointJSON struct {
	Addr     *string         `json:"Addr"`
	Metadata json.RawMessage `json:"Metadata"`
}

// parseEtcdValue reads one key's value: a bare host:port, or the JSON of an
// endpoints.Endpoint with an optional numeric Metadata.weight.
func parseEtcdValue(v []byte) (Endpoint, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return Endpoint{}, errors.New("empty value: want host:port or {\"Addr\": \"host:port\"}")
	}
	if v[0] != '{' {
		addr := string(v)
		if err := checkHostPort(addr); err != nil {
			return Endpoint{}, err
		}
		return Endpoint{Address: addr, Weight: 1}, nil
	}
	var j etcdEndpointJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return Endpoint{}, fmt.Errorf("not the JSON of an endpoints.Endpoint: %v", err)
	}
	if j.Addr == nil {
		return Endpoint{}, errors.New(`JSON without "Addr"`)
	}
	if err := checkHostPort(*j.Addr); err != nil {
		return Endpoint{}, fmt.Errorf("the JSON's Addr: %w", err)
	}
	w, err := etcdWeight(j.Metadata)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{Address: *j.Addr, Weight: w}, nil
}

// etcdWeight returns the weight in Metadata: 1 unless Metadata is an object
// with a "weight" key, which must then be an integer in 0..maxWeight (0
// means 1).
func etcdWeight(md json.RawMessage) (int, error) {
	md = bytes.TrimSpace(md)
	if len(md) == 0 || md[0] != '{' {
		return 1, nil // absent, null, or not an object: no weight given
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(md, &m); err != nil {
		return 0, fmt.Errorf("the JSON's Metadata: %v", err)
	}
	raw, ok := m["weight"]
	if !ok {
		return 1, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("the JSON's Metadata.weight %s: want a number", raw)
	}
	if f < 0 || f > maxWeight || f != math.Trunc(f) {
		return 0, fmt.Errorf("the JSON's Metadata.weight %s: want an integer in 0–%d", raw, maxWeight)
	}
	if f == 0 {
		return 1, nil
	}
	return int(f), nil
}
