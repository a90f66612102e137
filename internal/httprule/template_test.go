package httprule_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/httprule"
)

func TestParseValid(t *testing.T) {
	for _, tc := range []struct{ in, canonical string }{
		{"/", "/"},
		{"/v1/books", "/v1/books"},
		{"/v1/{name}", "/v1/{name=*}"},
		{"/v1/{name=shelves/*/books/*}", "/v1/{name=shelves/*/books/*}"},
		{"/v1/{name=**}", "/v1/{name=**}"},
		{"/v1/**", "/v1/**"},
		{"/v1/*/x", "/v1/*/x"},
		{"/v1/{a.b.c}/{d_e}", "/v1/{a.b.c=*}/{d_e=*}"},
		{"/v1/{name}:cancel", "/v1/{name=*}:cancel"},
		{"/v1/{name=**}:undelete", "/v1/{name=**}:undelete"},
		{"/v1/books:batchGet", "/v1/books:batchGet"},
		{"/v1/a:b/c", "/v1/a:b/c"}, // a ':' before the last '/' is part of a literal
		{"/pkg.Service/Method", "/pkg.Service/Method"},
		{"/v1/a%20b/~x-y_z.", "/v1/a%20b/~x-y_z."},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tmpl, err := httprule.Parse(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.canonical, tmpl.String())
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", `path template "": must start with '/'`},
		{"v1/books", "must start with '/'"},
		{"/v1//x", "empty segment"},
		{"/v1/", "empty segment"},
		{"/v1/**/x", `"**" must be the last segment`},
		{"/v1/{name=**}/x", `"**" must be the last segment`},
		{"/v1/{name", "unclosed '{'"},
		{"/v1/{name=a", "unclosed '{'"},
		{"/v1/{name=a/*", "unclosed '{'"},
		{"/v1/{a={b}}", "variables cannot nest"},
		{"/v1/{}", "empty variable name"},
		{"/v1/{1a}", `variable "1a": "1a" is not a field name`},
		{"/v1/{a.}", `variable "a.": "" is not a field name`},
		{"/v1/{a-b}", `"a-b" is not a field name`},
		{"/v1/{a}/{a}", `variable "a" appears twice`},
		{"/v1/{a}x", `unexpected 'x' after variable "a"`},
		{"/v1/x}", `unexpected '}'`},
		{"/v1/x:", "empty verb after ':'"},
		{"/:go", "a verb needs a segment before it"},
		{"/v1/x:a b", `verb "a b": invalid character`},
		{"/v1/a b", `segment "a b": invalid character`},
		{"/v1/a?b", `segment "a?b": invalid character`},
		{"/v1/%zz", `segment "%zz": invalid character`},
		{"/v1/{name=}", "empty segment"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := httprule.Parse(tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), `path template "`+tc.in+`"`)
		})
	}
}
