package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	probe, err := ambassador.NewStack(ambassador.ServiceConfig{Name: "probe", Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}}})
	require.NoError(t, err)
	real := probe.Discovery().ResolverBuilder() != nil
	require.NoError(t, probe.Close())
	if !real {
		t.Skip("needs real discovery")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, run(ctx))
}
