// Package transcodebench measures the ambassador's JSON→gRPC transcoding:
// grpc.health.v1 Check called with JSON over HTTP/1.1 through a transcode
// listener, against the same Check called with gRPC through the same
// listener (proxied as it is), both to one real grpc-go server on
// 127.0.0.1 and both reported in calls/s. The ratio is in
// benchmarks/README.md.
package transcodebench
