// Package transcode turns JSON over HTTP into gRPC calls at run time, with
// no generated code: the ambassador's transcode: listeners and routes.
//
// # Model
//
// A Handler holds a grpc.ClientConnInterface (the service's ClientConn,
// whose interceptors and resolver are the service's policies: retry with
// pushback, ratelimit, breaker, discovery) and a Source of Descriptors: a
// Reflection, which asks the upstream's server reflection
// (grpc.reflection.v1, falling back to v1alpha when v1 is UNIMPLEMENTED)
// on the first request and keeps the answer, or a Static set read by
// ParseFileSet from a FileDescriptorSet file. Messages are dynamicpb
// messages, which grpc's default proto codec sends as it sends generated
// ones; JSON is protojson's (unknown fields refused on input, proto3 JSON
// on output, so int64 is a string).
//
// # Requests
//
// POST /pkg.Service/Method with a JSON body (empty means the empty
// message) calls a unary method and answers 200 application/json with the
// response message. A server-streaming method answers
// application/x-ndjson, one bare message per line, flushed as each
// arrives; an error after the first message ends the body with a line
// {"error": {"code": N, "message": "...", "details": [...]}}. Client- and
// bidi-streaming methods answer 501 (code UNIMPLEMENTED): they have no JSON
// form here. With Rules (google.api.http bindings, see RuleBuilder) their
// verbs and paths call their methods too; the gRPC-style path is tried
// first.
//
// A gRPC error from the upstream becomes HTTPStatus of its code with the
// body {"code", "message", "details"} (details as protojson Any). A body
// that does not decode is 400 bad_request, a path with no method 404
// no_route, a body over MaxBody (4 MiB by default) 413 bad_request, all
// answered through Local without an upstream call; Local also answers the
// stack's own refusals (rate_limited, circuit_open, ...).
//
// Request headers Grpc-Metadata-<name> and Authorization become call
// metadata ("-bin" keys base64 in the header); response header and
// trailer metadata come back as Grpc-Metadata-<name> headers (HTTP
// trailers for a stream whose body has begun). The W3C trace context
// goes to the upstream: the caller's traceparent as it came, or with a
// Propagator the context of the request (the ambassador's server span).
package transcode
