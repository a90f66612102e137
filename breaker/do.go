package breaker

import (
	"context"
	"errors"
)

// Do runs f through key's breaker, for work that is neither an HTTP
// request nor a gRPC call (the ambassador's tcp listener connects through
// it, keyed by endpoint). When the breaker refuses, f is not called and Do
// returns an *OpenError wrapping ErrOpen (counted in
// outbound.breaker.rejections). Otherwise f's error is f's outcome: nil is
// a success, context.Canceled (the caller went away) is ignored, any other
// error is a failure; Do returns it unchanged.
func (b *Breaker) Do(key string, f func() error) error {
	e := b.acquire(mkey{a: key})
	if e == nil {
		return f()
	}
	defer b.release(e)
	var (
		err  error
		sent bool
	)
	_, _ = e.cb.Execute(func() (struct{}, error) {
		sent = true
		err = f()
		o := Success
		switch {
		case errors.Is(err, context.Canceled):
			o = Ignore
		case err != nil:
			o = Failure
		}
		return struct{}{}, outcomeErr(o)
	})
	if !sent {
		r := b.reject(e)
		b.flush()
		return r.err
	}
	b.flush()
	return err
}
