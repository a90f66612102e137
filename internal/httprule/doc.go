// Package httprule routes HTTP requests to gRPC methods by the
// google.api.http rules of their descriptors, and binds the path
// variables and query parameters of a request into the request message.
//
// It is the routing half of the ambassador's JSON→gRPC transcoding
// (ambassador/proxy): the handler builds a Router from the service
// descriptors it got by server reflection or from a descriptor set, first
// tries the gRPC-style path POST /pkg.Service/Method itself, and
// otherwise asks Router.Match for the verb and the escaped path. With the
// Match it creates a dynamicpb message of Match.Method.Input(), decodes the
// JSON body (protojson) into Match.BodyTarget of it, then calls
// Match.Bind with the query, makes the call, and answers with the whole
// response or its Match.ResponseBody field. A BindError becomes 400
// bad_request, no match 404 no_route. The package knows nothing of HTTP
// handlers or gRPC connections, and imports neither ambassador nor proxy.
//
// # Rules
//
// The google.api.http option of a method (get, put, post, delete, patch,
// custom, each with body and response_body, and additional_bindings one
// level deep) is read whether it was resolved when the descriptors were
// built or kept as unknown fields of the MethodOptions (see HTTPRule).
// Path templates follow the HttpRule grammar (see Template): literal
// segments, "*", "**" (last only), "{field}", "{field.sub}",
// "{field=segments/*/...}" and a ":verb" suffix. A variable binds a
// singular scalar, enum or string-valued well-known field; body is "*" or
// the path of a singular message field; response_body a top-level field
// of the response. NewRouter refuses a rule that breaks any of this,
// naming the method and the pattern.
//
// # Decoding
//
// Match takes the escaped path (r.URL.EscapedPath()). A single-segment
// variable ("{name}") is percent-decoded in full, so "%2F" becomes '/';
// a multi-segment one ("{name=shelves/*}", "{name=**}") is decoded
// except for "%2F", which stays as it is, '/' being its separator.
// Literal segments match their percent-decoded form.
//
// # Precedence
//
// When several rules of a verb match a path, the most specific wins:
//  1. more literal segments;
//  2. fewer "**";
//  3. a template with a ":verb" before one without;
//  4. at the first position where the templates differ, a literal before
//     "*" before "**" (all positions alike: the longer template first);
//  5. declaration order: services and methods as given, a rule before its
//     additional_bindings.
//
// Two rules of one verb whose templates differ only in variable names are
// an error. A rule whose path is a method's gRPC path ("/pkg.Service/Method")
// is an ordinary literal template; the handler's own gRPC-path check comes
// first in any case, so no rule can hide a method's gRPC path.
//
// # Concurrency
//
// A Router is immutable and safe for concurrent use; a Match is a value.
package httprule
