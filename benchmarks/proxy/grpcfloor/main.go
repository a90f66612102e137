// Command grpcfloor is the floor of the gRPC proxy benchmark
// (benchmarks/proxy/grpc.sh): the smallest pass-through proxy grpc-go
// allows, with no policies, no telemetry and no access log. Every call is
// taken by one grpc.Server's UnknownServiceHandler and forwarded on one
// grpc.ClientConn to the upstream as a full-duplex stream of the same
// method, the messages passing through a codec that does not decode them,
// the metadata copied both ways. What it costs per call is grpc-go's own
// transport on both sides: the part of the ambassador's native path that
// is not the ambassador's.
//
// Usage:
//
//	grpcfloor -addr 127.0.0.1:18091 -upstream 127.0.0.1:18090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

var upstream = flag.String("upstream", "127.0.0.1:18090", "host:port of the gRPC upstream")

func main() { loopback.Main("grpcfloor", "127.0.0.1:18091", run) }

func run(ctx context.Context, ln net.Listener) error {
	if err := loopback.Check(*upstream); err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	cc, err := grpc.NewClient(*upstream,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(frameCodec{}), grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return err
	}
	defer func() { _ = cc.Close() }()
	srv := grpc.NewServer(
		grpc.UnknownServiceHandler(forwarder{cc}.handle),
		grpc.ForceServerCodecV2(frameCodec{}),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		// As the ambassador does: calls on long-lived workers, not a
		// goroutine each.
		grpc.NumStreamWorkers(64),
	)
	return loopback.ServeUntil(ctx, func() error { return srv.Serve(ln) }, func() error {
		srv.GracefulStop()
		return nil
	})
}

// frame is one message, its bytes undecoded.
type frame struct{ b []byte }

// frameCodec passes messages through: Unmarshal keeps the bytes, Marshal
// returns them.
type frameCodec struct{}

func (frameCodec) Name() string { return "proto" }

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("grpcfloor: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
}

func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("grpcfloor: cannot unmarshal into %T", v)
	}
	f.b = data.Materialize()
	return nil
}

var duplex = grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

type forwarder struct{ cc *grpc.ClientConn }

// handle forwards one call: the caller's messages go upstream on a
// goroutine of their own, the upstream's come back on this one.
func (f forwarder) handle(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		switch k {
		case ":authority", "content-type", "user-agent", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding":
		default:
			out[k] = v
		}
	}
	cs, err := f.cc.NewStream(metadata.NewOutgoingContext(ctx, out), &duplex, method)
	if err != nil {
		return err
	}
	go func() {
		for {
			m := new(frame)
			if err := ss.RecvMsg(m); err != nil {
				if errors.Is(err, io.EOF) {
					_ = cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if cs.SendMsg(m) != nil {
				return
			}
		}
	}()
	var m frame
	for first := true; ; first = false {
		err := cs.RecvMsg(&m)
		if first {
			if h, herr := cs.Header(); herr == nil && len(h) > 0 {
				if err := ss.SendHeader(h); err != nil {
					return err
				}
			}
		}
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}
