package proxy

import (
	"fmt"

	"google.golang.org/grpc/mem"
)

// rawFrame is one gRPC message as it travels through the native path: the
// bytes of the message (after decompression), never decoded.
//
// A frame is written once (Unmarshal) and then only read: grpc-go's
// transports write a message after SendMsg has returned, from the
// BufferSlice Marshal gave them, which points into the frame. So a frame
// that was sent is never received into again; each message gets a frame
// of its own.
type rawFrame struct {
	b   []byte
	out [1]mem.Buffer // what Marshal returns: b, as a *mem.SliceBuffer (no allocation per send)
}

// rawCodec is the pass-through codec of the native gRPC path (grpc-go's
// encoding.CodecV2): Unmarshal keeps the bytes of the message, Marshal
// hands them back, so the ambassador forwards every message without
// knowing its protobuf type. The bytes are copied once out of grpc's
// pooled buffers: the retry layer may send a message again after the
// receiving side has released them. Sending allocates nothing (see
// rawFrame).
type rawCodec struct{}

// Name is "proto": what the upstream and the caller speak is protobuf (or
// whatever the content-subtype says); this codec just does not look.
func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*rawFrame)
	if !ok {
		return nil, fmt.Errorf("ambassador: grpc pass-through codec: cannot marshal %T", v)
	}
	if f.out[0] == nil {
		f.out[0] = (*mem.SliceBuffer)(&f.b)
	}
	// SliceBuffer's Ref and Free do nothing, so handing out the frame's own
	// slice, once per attempt that sends it, is safe.
	return f.out[:], nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*rawFrame)
	if !ok {
		return fmt.Errorf("ambassador: grpc pass-through codec: cannot unmarshal into %T", v)
	}
	f.b = data.Materialize()
	f.out[0] = (*mem.SliceBuffer)(&f.b)
	return nil
}
