package proxy

import "time"

// Bounds the config checks enforce beyond each policy's own Validate, so
// that no accepted value makes a later computation overflow (a sum of split
// weights, say) or a limit meaningless.
const (
	// MaxSplitWeight is the largest weight of one leg of a split; weights
	// are integers in [0, MaxSplitWeight] and at least one leg of a split
	// must be positive.
	MaxSplitWeight = 10000
	// MaxHeaderBytesLimit bounds LimitsConfig.MaxHeaderBytes.
	MaxHeaderBytesLimit Size = 16 << 20
	// MaxLimitsTimeout bounds LimitsConfig.ReadHeaderTimeout,
	// LimitsConfig.DrainTimeout and LimitsConfig.ShutdownDelay.
	MaxLimitsTimeout = time.Hour
)
