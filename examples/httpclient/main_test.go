package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	require.NoError(t, run(context.Background(), 2, 3))
	require.NoError(t, run(context.Background(), 5, 2), "exhausted retries still end in a response")
}
