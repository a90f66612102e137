package discovery

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/resolver"
)

// fakeSubConn is a map key for PickerBuildInfo.ReadySCs.
type fakeSubConn struct{ balancer.SubConn }

// A pick grpc did not use (its connection had no ready transport, so grpc
// calls Done with an empty DoneInfo and picks again, as picker_wrapper.go
// does) is no answer from the endpoint: it is not counted as a request,
// and it neither lowers the endpoint's latency nor halves its failures.
// It used to be recorded as an instant success, so the ewma balancer sent
// more calls to an endpoint whose connection was going away.
func TestUnusedGRPCPickIsNotAnAnswer(t *testing.T) {
	s, err := NewService("users", Static("10.0.0.1:80"), Config{Balancer: EWMA})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	ep := s.snap.Load().members[0].ep
	sc := &fakeSubConn{}
	p := pickerBuilder{kind: kindEWMA}.Build(base.PickerBuildInfo{ReadySCs: map[balancer.SubConn]base.SubConnInfo{
		sc: {Address: resolver.Address{Addr: ep.addr, Attributes: attributes.New(epKey{}, ep).WithValue(weightKey{}, 1)}},
	}})
	res, err := p.Pick(balancer.PickInfo{Ctx: context.Background()})
	require.NoError(t, err)
	require.Equal(t, 1, s.Endpoints()[0].InFlight)
	res.Done(balancer.DoneInfo{}) // as grpc reports a pick it did not use

	st := s.Endpoints()[0]
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.Requests, "no call reached the endpoint")
	assert.Zero(t, st.EWMA)
}
