// Package refusal marks errors that mean "this stack refused the request
// locally": a breaker that is open, a limiter without tokens, a service
// without ready endpoints. Such a refusal never reached an upstream, so the
// retry layer returns it at once instead of retrying it with backoff.
//
// The sentinels live in their own packages (breaker.ErrOpen,
// ratelimit.ErrLimited, discovery.ErrNoEndpoints) and are built with New, so
// retry can recognise them with Is without importing those packages.
package refusal

// Error is a local-refusal sentinel.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// LocalRefusal marks the error as a local refusal.
func (e *Error) LocalRefusal() {}

// New returns a new local-refusal sentinel with the given message.
func New(msg string) error { return &Error{msg: msg} }

type marker interface{ LocalRefusal() }

// Is reports whether err, or any error it wraps, is a local refusal.
func Is(err error) bool {
	for err != nil {
		if _, ok := err.(marker); ok {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if Is(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// compile-time check that Error satisfies the marker.
var _ marker = (*Error)(nil)
