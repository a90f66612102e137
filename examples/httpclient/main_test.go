package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunHidesTheFlakyUpstream(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, 40))
	s := out.String()
	assert.Contains(t, s, "client: 40 of 40 requests succeeded", s)

	num := func(re string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(s)
		require.NotNil(t, m, "%s not in output:\n%s", re, s)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	flakyOK := num(`flaky upstream:\s+(\d+) answered`)
	failed := num(`(\d+) failed with 503`)
	steady := num(`steady upstream:\s+(\d+) answered`)
	assert.Equal(t, 40, flakyOK+steady, "every request was answered exactly once with a 200")
	if failed > 0 {
		// Each 503 the client did not see was retried: counted as such.
		assert.Equal(t, failed, num(`outcome=retried\} (\d+)`), s)
	}
	assert.Equal(t, 40, num(`outcome=success\} (\d+)`), s)
}
