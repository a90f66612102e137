package discovery

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/refusal"
)

// pickerBuilder builds the pickers of one balancer (one ClientConn):
// conns follows that balancer's connections being set up.
type pickerBuilder struct {
	kind  balancerKind
	conns *connTracker
}

// Build makes a picker over the ready connections. Endpoints that came from
// our resolver carry their shared state (load, latency, readiness), so HTTP
// and gRPC traffic of one Service score the same endpoints; addresses from
// another resolver get fresh state, reset whenever grpc rebuilds the picker.
// Addresses from GatedDialOptions' resolver carry the connection's CallGate.
func (b pickerBuilder) Build(info base.PickerBuildInfo) balancer.Picker {
	if len(info.ReadySCs) == 0 {
		return base.NewErrPicker(balancer.ErrNoSubConnAvailable)
	}
	p := &grpcPicker{kind: b.kind, conns: b.conns}
	var svc *Service
	for sc, sci := range info.ReadySCs {
		ep, _ := sci.Address.Attributes.Value(epKey{}).(*endpoint)
		if ep == nil {
			ep = newEndpoint(sci.Address.Addr, nil)
		} else if ep.svc != nil {
			svc = ep.svc
		}
		if g, _ := sci.Address.Attributes.Value(gateKey{}).(CallGate); g != nil {
			p.gate = g
		}
		w, _ := sci.Address.Attributes.Value(weightKey{}).(int)
		p.snap.members = append(p.snap.members, newMember(ep, w, nil))
		p.scs = append(p.scs, sc)
	}
	if b.kind == kindRoundRobin {
		// A stable order, so the smooth schedule does not depend on map order.
		idx := make([]int, len(p.scs))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(i, j int) bool { return p.snap.members[idx[i]].ep.addr < p.snap.members[idx[j]].ep.addr })
		ms := make([]member, len(idx))
		scs := make([]balancer.SubConn, len(idx))
		for i, k := range idx {
			ms[i], scs[i] = p.snap.members[k], p.scs[k]
		}
		p.snap.members, p.scs = ms, scs
		p.snap.schedule = buildSchedule(ms)
		p.ctr.Store(rand.Uint64())
	} else {
		p.snap.schedule = buildSchedule(p.snap.members)
	}
	if svc != nil {
		p.errNone = svc.errNone
	} else {
		p.errNone = newNoEndpointsError("")
	}
	return p
}

type grpcPicker struct {
	kind    balancerKind
	ctr     atomic.Uint64 // round robin position
	snap    snapshot
	scs     []balancer.SubConn
	errNone error
	gate    CallGate     // nil: none
	conns   *connTracker // the balancer's connections being set up
}

// Pick uses the same choice as the HTTP RoundTripper over the ready
// connections, skipping endpoints the service's Health or health checks
// reject and avoiding endpoints the attempt record says were tried. With a
// CallGate, the chosen endpoint must be admitted by it; one it refuses
// (its readiness changed since the choice) is replaced by another ready
// endpoint, as on the HTTP side. With none ready it fails the RPC with
// codes.Unavailable (errors.Is(err, ErrNoEndpoints) holds for the caller),
// unless a connection to another endpoint is still being set up: then the
// RPC waits for it (balancer.ErrNoSubConnAvailable), as it waits for the
// first connection, when that endpoint may take it.
func (p *grpcPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	ctx := info.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	rec, _ := attempt.FromContext(ctx)
	var (
		refused [maxRepicks]int
		call    any
	)
	i := -1
	for n := 0; ; n++ {
		i = choose(p.kind, &p.snap, &p.ctr, rec)
		if i < 0 {
			if p.conns != nil && (!p.conns.current(p) || p.conns.waitable()) {
				// A connection being set up may take the call, or grpc
				// has a newer picker already: it picks again with it.
				return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
			}
			return balancer.PickResult{}, p.errNone
		}
		if p.gate == nil {
			break
		}
		var err error
		call, err = p.gate.StartCall(ctx, p.snap.members[i].ep.addr)
		if err == nil {
			break
		}
		if !refusal.Is(err) || n == maxRepicks || containsIndex(refused[:n], i) {
			if refusal.Is(err) && p.conns != nil && p.conns.waitable() {
				return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
			}
			return balancer.PickResult{}, err
		}
		refused[n] = i
	}
	ep := p.snap.members[i].ep
	if rec != nil {
		rec.AddTried(ep.addr)
	}
	es := endStreamOf(ctx)
	if es != nil {
		es.picked()
	}
	ep.inflight.Add(1)
	start := sentAt(ctx)
	var done func(balancer.DoneInfo)
	if p.gate == nil {
		done = func(di balancer.DoneInfo) { ep.grpcDone(start, di) }
	} else {
		gate := p.gate
		done = func(di balancer.DoneInfo) {
			gate.EndCall(call, ctx, doneErr(di))
			ep.grpcDone(start, di)
		}
	}
	if es != nil {
		done = es.doneFunc(done) // the end the caller sees (see streamEnds)
	}
	return balancer.PickResult{SubConn: p.scs[i], Done: done}, nil
}

// grpcDone records the end of a gRPC call picked for ep at start (monoNow).
func (ep *endpoint) grpcDone(start int64, di balancer.DoneInfo) {
	end := monoNow()
	rtt := time.Duration(end - start)
	ep.inflight.Add(-1)
	err := doneErr(di)
	if refusal.Is(err) {
		// An attempt grpc did not use: no ready transport on the picked
		// connection (an empty DoneInfo), or see endStream.picked.
		return
	}
	if err == nil {
		ep.observeAt(end, rtt, false)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	switch status.Code(err) {
	case codes.Canceled:
	case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown,
		codes.DataLoss, codes.DeadlineExceeded:
		ep.observeAt(end, rtt, true)
		ep.failedWith(err.Error())
	default: // an application answer: the endpoint worked
		ep.observeAt(end, rtt, false)
	}
}

func containsIndex(s []int, i int) bool {
	for _, v := range s {
		if v == i {
			return true
		}
	}
	return false
}
