package ratelimit

import (
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/refusal"
)

// ErrLimited is the sentinel every refusal of the Limiter wraps: no token was
// free (or the key is paused) and the request could not wait for one. Match it
// with errors.Is; use errors.As with *LimitedError for the key and the time
// until a token frees up. It is a local refusal: the retry layer returns it at
// once instead of retrying it with backoff.
var ErrLimited = refusal.New("ratelimit: rate limited")

// LimitedError is the error a refused request gets. It wraps ErrLimited.
type LimitedError struct {
	// Key is the bucket that refused: the destination host, or "*" for the
	// global scope.
	Key string
	// RetryAfter is how long until a token (or the end of an upstream
	// pause) frees up; always > 0. The ambassador turns it into a
	// Retry-After header.
	RetryAfter time.Duration
}

// Error describes the refusal.
func (e *LimitedError) Error() string {
	return "ratelimit: rate limited for " + strconv.Quote(e.Key) + ", retry after " + e.RetryAfter.String()
}

// Unwrap returns ErrLimited.
func (e *LimitedError) Unwrap() error { return ErrLimited }

// grpcError is the error the gRPC interceptors return: a status error whose
// code users expect, which still unwraps to the Limiter's own error so that
// errors.Is(err, ErrLimited) and errors.Is(err, context.Canceled) hold.
type grpcError struct {
	code codes.Code
	err  error
}

func (e *grpcError) Error() string {
	return "rpc error: code = " + e.code.String() + " desc = " + e.err.Error()
}

// GRPCStatus lets status.FromError and status.Code see the code.
func (e *grpcError) GRPCStatus() *status.Status { return status.New(e.code, e.err.Error()) }

func (e *grpcError) Unwrap() error { return e.err }
