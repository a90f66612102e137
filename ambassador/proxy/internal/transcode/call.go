package transcode

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// unary makes a unary call and answers its response as JSON (or the field
// responseBody names, when it is a message).
func (c *call) unary(ctx context.Context, w http.ResponseWriter, r *http.Request, method string, req proto.Message, responseBody string) {
	resp := dynamicpb.NewMessage(c.md.Output())
	var hdr, trl metadata.MD
	err := c.h.Conn.Invoke(ctx, method, req, resp, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		if c.h.Local.Failed(w, r, err) {
			return
		}
		setResponseMetadata(w.Header(), hdr, "")
		setResponseMetadata(w.Header(), trl, "")
		writeStatus(w, status.Convert(err), c.res)
		return
	}
	b, err := c.responseJSON(resp, responseBody)
	if err != nil {
		writeStatus(w, status.New(status.Code(err), "outbound: encoding the response: "+err.Error()), c.res)
		return
	}
	h := w.Header()
	setResponseMetadata(h, hdr, "")
	setResponseMetadata(h, trl, "")
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

// stream makes a server-streaming call and answers NDJSON: one message per
// line, flushed as it comes; an error after the first message is a last
// line {"error": {...}}, response trailers are HTTP trailers.
func (c *call) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, method string, req proto.Message) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream, whatever happened
	st, err := c.h.Conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err == nil {
		err = st.SendMsg(req)
	}
	if err == nil {
		err = st.CloseSend()
	}
	if err == io.EOF {
		err = nil // the stream has ended: the first RecvMsg returns its status
	}
	if err != nil {
		c.h.fail(w, r, err, c.res)
		return
	}
	rc := http.NewResponseController(w)
	opts := protojson.MarshalOptions{Resolver: c.res}
	for n := 0; ; n++ {
		msg := dynamicpb.NewMessage(c.md.Output())
		err := st.RecvMsg(msg)
		if n == 0 && err != nil && !errors.Is(err, io.EOF) {
			if c.h.Local.Failed(w, r, err) {
				return
			}
			hdr, _ := st.Header()
			setResponseMetadata(w.Header(), hdr, "")
			setResponseMetadata(w.Header(), st.Trailer(), "")
			writeStatus(w, status.Convert(err), c.res)
			return
		}
		if n == 0 {
			hdr, _ := st.Header()
			setResponseMetadata(w.Header(), hdr, "")
			w.Header()["Content-Type"] = []string{"application/x-ndjson"}
			w.WriteHeader(http.StatusOK)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				line := append(append([]byte(`{"error":`), statusJSON(status.Convert(err), c.res)...), '}', '\n')
				_, _ = w.Write(line)
			}
			setResponseMetadata(w.Header(), st.Trailer(), http.TrailerPrefix)
			return
		}
		b, err := opts.Marshal(msg)
		if err != nil {
			line := append(append([]byte(`{"error":`), statusJSON(status.New(status.Code(err), "outbound: encoding the response: "+err.Error()), c.res)...), '}', '\n')
			_, _ = w.Write(line)
			return
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return // the client went away
		}
		_ = rc.Flush()
	}
}

// responseJSON is the JSON of resp, or of its top-level field
// responseBody (of any kind: protojson writes it inside the message, with
// its default when unset, and it is cut out of that).
func (c *call) responseJSON(resp *dynamicpb.Message, responseBody string) ([]byte, error) {
	fd := c.md.Output().Fields().ByName(protoreflect.Name(responseBody))
	if responseBody == "" || fd == nil {
		return protojson.MarshalOptions{Resolver: c.res}.Marshal(resp)
	}
	only := dynamicpb.NewMessage(c.md.Output())
	if resp.Has(fd) {
		only.Set(fd, resp.Get(fd))
	}
	b, err := protojson.MarshalOptions{Resolver: c.res, EmitUnpopulated: true}.Marshal(only)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	return fields[fd.JSONName()], nil
}
