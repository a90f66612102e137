//go:build !unix

package proxy_test

import "time"

// processCPU is not measured here: the benchmark reports 0 CPU per call.
func processCPU() time.Duration { return 0 }
