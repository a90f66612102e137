package breaker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/breaker"
)

// BenchmarkStartEndCall is the breaker's cost per gRPC call when it runs at
// the balancer's pick (StartCall, then EndCall with the call's success),
// over two endpoints in turn as a balancer picks them; compare
// BenchmarkUnaryInterceptor, the same breaker around an invoker.
func BenchmarkStartEndCall(b *testing.B) {
	br, err := breaker.New(benchConfig())
	require.NoError(b, err)
	eps := [2]string{"10.0.0.1:443", "10.0.0.2:443"}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ep := eps[i&1]
		i++
		call, err := br.StartCall(ctx, ep)
		if err != nil {
			b.Fatal(err)
		}
		br.EndCall(call, ctx, nil)
	}
	assert.Equal(b, breaker.StateClosed, br.State(eps[0]))
}
