package proxy_test

import (
	"errors"
	"testing"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// FuzzParseConfig checks that no input makes ParseConfig panic, that every
// rejection is a *ConfigError naming at least one problem, and that an
// accepted config also passes Validate.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("listeners: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := proxy.ParseConfig(data, "/cfg")
		if err != nil {
			var ce *proxy.ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error is not a non-empty *ConfigError: %v", err)
			}
			for _, p := range ce.Problems {
				if p.Msg == "" || p.Line < 0 {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("nil config without error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config fails Validate: %v", err)
		}
	})
}
