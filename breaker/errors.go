package breaker

import (
	"github.com/outbound-go/outbound/internal/refusal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrOpen is returned, wrapped in an *OpenError, when a breaker refuses a
// request: its key is open, or half-open with every probe slot taken. The
// request was not sent. It is a local refusal, so the retry layer returns it
// at once instead of retrying it with backoff. Match it with errors.Is.
var ErrOpen = refusal.New("breaker: circuit open")

// OpenError is the error a refused request gets. It unwraps to ErrOpen.
type OpenError struct {
	// Key is the breaker key that refused the request (by default the
	// endpoint host:port).
	Key string
}

// Error returns "breaker: circuit open for KEY".
func (e *OpenError) Error() string { return "breaker: circuit open for " + e.Key }

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }

// grpcOpenError is what the gRPC interceptors return on a refusal: a status
// error with codes.Unavailable for gRPC callers (status.Code, status.FromError)
// that still unwraps to the *OpenError and so to ErrOpen.
type grpcOpenError struct {
	open *OpenError
	st   *status.Status
	msg  string
}

func newGRPCOpenError(open *OpenError) *grpcOpenError {
	st := status.New(codes.Unavailable, open.Error())
	return &grpcOpenError{open: open, st: st, msg: "rpc error: code = Unavailable desc = " + open.Error()}
}

func (e *grpcOpenError) Error() string              { return e.msg }
func (e *grpcOpenError) GRPCStatus() *status.Status { return e.st }
func (e *grpcOpenError) Unwrap() error              { return e.open }
