package retry

import (
	"io"
	"net/http"
)

// requestTrailer gives each attempt of a request with trailers a Trailer
// map of its own. The caller's Trailer holds the declared keys until its
// body reaches EOF, when the server reading that body sets their values;
// attempts that share the map would race: one attempt's transport ranges
// over the keys to declare them while another's read of the body sets the
// values (a hedge, or a retry started while the attempt before it still
// writes its body). Each attempt's map gets the values when its own body
// reaches EOF, which comes after the caller's body did.
type requestTrailer struct {
	from http.Header // the caller's Trailer
	keys []string    // its keys, read before any attempt reads the body
}

// newRequestTrailer snapshots req's trailer keys; nil without trailers. It
// must run before any attempt reads req's body.
func newRequestTrailer(req *http.Request) *requestTrailer {
	if len(req.Trailer) == 0 {
		return nil
	}
	keys := make([]string, 0, len(req.Trailer))
	for k := range req.Trailer {
		keys = append(keys, k)
	}
	return &requestTrailer{from: req.Trailer, keys: keys}
}

// apply gives r2 (an attempt's own request copy) its own Trailer, filled
// from the caller's when r2's body, or one GetBody returns, reaches EOF.
func (t *requestTrailer) apply(r2 *http.Request) {
	if t == nil {
		return
	}
	own := make(http.Header, len(t.keys))
	for _, k := range t.keys {
		own[k] = nil
	}
	r2.Trailer = own
	if r2.Body != nil && r2.Body != http.NoBody {
		r2.Body = &trailerBody{ReadCloser: r2.Body, from: t.from, to: own}
	}
	if gb := r2.GetBody; gb != nil {
		r2.GetBody = func() (io.ReadCloser, error) {
			b, err := gb()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return &trailerBody{ReadCloser: b, from: t.from, to: own}, nil
		}
	}
}

// trailerBody copies the caller's trailer values into an attempt's Trailer
// when the attempt's body reaches EOF.
type trailerBody struct {
	io.ReadCloser
	from, to http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		for k := range b.to {
			b.to[k] = b.from[k]
		}
	}
	return n, err
}
