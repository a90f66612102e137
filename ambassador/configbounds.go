package ambassador

import "time"

// Bounds the config checks enforce beyond each policy's own Validate, so
// that no accepted value makes a later computation overflow (a sum of split
// weights, say) or a limit meaningless.
const (
	// MaxSplitWeight is the largest weight of one leg of a split; weights
	// are integers in [0, MaxSplitWeight] and at least one leg of a split
	// must be positive.
	MaxSplitWeight = 10000
	// MaxServiceTimeout bounds ServiceConfig.Timeout.
	MaxServiceTimeout = 24 * time.Hour
	// MaxConnectionsLimit bounds ServiceConfig.MaxConnections and
	// ServiceConfig.MaxConcurrentRequests.
	MaxConnectionsLimit = 1_000_000
	// MaxHeaderBytesLimit bounds LimitsConfig.MaxHeaderBytes.
	MaxHeaderBytesLimit Size = 16 << 20
	// MaxLimitsTimeout bounds LimitsConfig.ReadHeaderTimeout and
	// LimitsConfig.DrainTimeout.
	MaxLimitsTimeout = time.Hour
)

// checkRange reports path unless 0 ≤ v ≤ hi; what says how hi reads
// ("1000000", "24h0m0s", "16MiB").
func checkRange(ck checker, path string, v, hi int64, what string) {
	if v < 0 {
		checkNonNegative(ck, path, v)
		return
	}
	if v > hi {
		ck.add(path, "must be at most %s", what)
	}
}
