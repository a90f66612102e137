//go:build unix

package proxy_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used so
// far: under load from other processes, a benchmark's CPU per call moves
// much less than its wall time per call.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
