package proxy

import "net/http"

// flushAnswered sends a finished HTTP/1 answer to the caller before the
// handler's bookkeeping (the request metric, the access-log line, the
// entry's release) rather than after it: net/http's server keeps a small
// answer in its buffers until the handler returns, so with one request at
// a time every microsecond of bookkeeping was added to the caller's
// latency. The flush writes what net/http would write when the handler
// returns and costs no extra write(2): the later flush finds nothing left.
//
// Only an answer whose length the header declares (net/http can set the
// length itself only once the handler has returned: flushing earlier
// would turn a small answer without one into a chunked one), with a
// final status that is not 101 (a hijacked connection is not net/http's
// to flush), and only on HTTP/1 (HTTP/2 ends the stream when the handler
// returns, so an early flush would only add a frame).
func flushAnswered(w http.ResponseWriter, r *http.Request, status int) {
	if r.ProtoMajor != 1 || status < 200 || status == http.StatusSwitchingProtocols {
		return
	}
	if len(w.Header()["Content-Length"]) == 0 {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
