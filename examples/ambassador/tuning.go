package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// defaultGCPercent is the GOGC the ambassador runs with unless the GOGC
// environment variable says otherwise. A proxy's live heap is small (a few
// MiB: routing tables, idle connections, pooled buffers) and its garbage is
// per-request, so the default of 100 collects very often for little memory
// saved; 400 cut the CPU per proxied request by about a tenth in
// benchmarks/proxy on a 2-core machine, for a heap of tens of MiB.
const defaultGCPercent = 400

// setGCPercent applies defaultGCPercent unless GOGC is set.
func setGCPercent() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// defaultMaxProcs is the GOMAXPROCS the ambassador runs with unless the
// GOMAXPROCS environment variable says otherwise. It runs beside an
// application and shares its machine: on one P it spent a quarter less CPU
// per proxied request at 32 connections and a third less at one (the idle
// second P's thread is woken and spins for every handoff) in
// benchmarks/proxy on a 2-core machine, and served more requests per
// second. One P caps the process at one core; a busy ambassador with cores
// to spare sets GOMAXPROCS.
const defaultMaxProcs = 1

// setMaxProcs applies defaultMaxProcs unless GOMAXPROCS is set.
func setMaxProcs() {
	if _, ok := os.LookupEnv("GOMAXPROCS"); !ok {
		runtime.GOMAXPROCS(defaultMaxProcs)
	}
}
