package discovery

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// trackerCC is the ClientConn under a connTracker: it keeps the state
// listener of the one connection made and counts the states sent to grpc.
type trackerCC struct {
	balancer.ClientConn // nil: only the methods below are called
	listener            func(balancer.SubConnState)
	updates             int
}

func (c *trackerCC) NewSubConn(_ []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	c.listener = opts.StateListener
	return nil, nil
}

func (c *trackerCC) UpdateState(balancer.State) { c.updates++ }

// A connection that has become ready still counts as being set up until
// base hands grpc the picker holding it: a pick on the picker before it
// (no ready endpoint there) waits for the next picker instead of failing
// with no endpoints. Once that picker is out, or the connection fails, it
// no longer counts.
func TestReadyConnectionIsWaitedForUntilItsPickerIsOut(t *testing.T) {
	cc := &trackerCC{}
	tr := &connTracker{ClientConn: cc}
	ep := newEndpoint("10.0.0.1:80", nil)
	_, err := tr.NewSubConn([]resolver.Address{{Addr: ep.addr, Attributes: attributes.New(epKey{}, ep)}}, balancer.NewSubConnOptions{})
	require.NoError(t, err)
	require.NotNil(t, cc.listener)
	assert.True(t, tr.waitable(), "idle, about to connect")
	for _, step := range []struct {
		publish bool               // base hands grpc its picker, else:
		state   connectivity.State // the connection changes state
		waitFor bool
		why     string
	}{
		{false, connectivity.Connecting, true, "connecting"},
		{false, connectivity.Ready, true, "ready, but no picker with it is out yet"},
		{true, 0, false, "ready and in the picker"},
		{false, connectivity.Idle, true, "idle again, reconnecting"},
		{false, connectivity.TransientFailure, false, "failed"},
		{false, connectivity.Connecting, false, "failed stays failed until ready, as base keeps it"},
	} {
		if step.publish {
			tr.UpdateState(balancer.State{ConnectivityState: connectivity.Ready})
		} else {
			cc.listener(balancer.SubConnState{ConnectivityState: step.state})
		}
		assert.Equal(t, step.waitFor, tr.waitable(), step.why)
	}
	assert.Equal(t, 1, cc.updates, "the picker reached grpc")
}

// namedPicker is a picker told apart by its name.
type namedPicker struct{ name string }

func (*namedPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
}

// The tracker knows which picker grpc has: a pick that still runs on the
// one before (grpc swapped them meanwhile) is told so, and lets grpc pick
// again instead of failing on what the old picker lacks.
func TestTrackerKnowsTheCurrentPicker(t *testing.T) {
	tr := &connTracker{ClientConn: &trackerCC{}}
	p1, p2 := &namedPicker{"1"}, &namedPicker{"2"}
	assert.False(t, tr.current(p1), "none handed over yet")
	tr.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: p1})
	assert.True(t, tr.current(p1))
	tr.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: p1})
	assert.True(t, tr.current(p1), "the same picker sent again stays current")
	tr.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: p2})
	assert.False(t, tr.current(p1), "replaced")
	assert.True(t, tr.current(p2))
}
