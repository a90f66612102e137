package size_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/internal/size"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want size.Size
		err  string
	}{
		{in: "1MiB", want: 1 << 20},
		{in: "64KiB", want: 64 << 10},
		{in: "512", want: 512},
		{in: "1.5KB", want: 1500},
		{in: "2 GiB", want: 2 << 30},
		{in: "10B", want: 10},
		{in: "", err: "empty"},
		{in: "-1", err: "negative"},
		{in: "1XB", err: "invalid size"},
		{in: "99999999999GiB", err: "too large"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := size.Parse(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestYAML(t *testing.T) {
	var v struct {
		A size.Size `yaml:"a"`
		B size.Size `yaml:"b"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("a: 1MiB\nb: 4096\n"), &v))
	assert.Equal(t, size.Size(1<<20), v.A)
	assert.Equal(t, size.Size(4096), v.B)
	assert.Equal(t, "1MiB", v.A.String())

	err := yaml.Unmarshal([]byte("a: lots\n"), &v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 1")
	err = yaml.Unmarshal([]byte("a: [1]\n"), &v)
	require.Error(t, err)
}
