package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionFlag(t *testing.T) {
	p := startProc(t, "-version")
	require.Equal(t, 0, p.exitCode(t, 15*time.Second))
	// Three fields; the test binary is built from this checkout, so the
	// version is go build's VCS pseudo-version or one of the devel forms.
	re := regexp.MustCompile(`^ambassador (v\d+\.\d+\.\d+\S*|\(devel\)) go1\.\d+\S*\n$`)
	assert.Regexp(t, re, p.out.String())
}
