package proxy

import (
	"fmt"

	"google.golang.org/grpc/mem"
)

// rawFrame is one gRPC message as it travels through the native path: the
// bytes of the message (after decompression), never decoded.
type rawFrame struct{ b []byte }

// rawCodec is the pass-through codec of the native gRPC path (grpc-go's
// encoding.CodecV2): Unmarshal keeps the bytes of the message, Marshal
// hands them back, so the ambassador forwards every message without
// knowing its protobuf type. The bytes are copied once out of grpc's
// pooled buffers: the retry layer may send a message again after the
// receiving side has released them.
type rawCodec struct{}

// Name is "proto": what the upstream and the caller speak is protobuf (or
// whatever the content-subtype says); this codec just does not look.
func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*rawFrame)
	if !ok {
		return nil, fmt.Errorf("ambassador: grpc pass-through codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*rawFrame)
	if !ok {
		return fmt.Errorf("ambassador: grpc pass-through codec: cannot unmarshal into %T", v)
	}
	f.b = data.Materialize()
	return nil
}
