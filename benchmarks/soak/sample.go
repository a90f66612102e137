package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one reading of the ambassador process.
type sample struct {
	elapsed    time.Duration
	reqs       snapshot
	goroutines int64 // go_goroutines from the admin /metrics
	fds        int64 // entries of /proc/PID/fd
	rssKiB     int64 // VmRSS of /proc/PID/status
}

// A sample is the smallest of sampleReads readings sampleSpacing apart
// (RSS: the last): a request in flight holds a few goroutines and sockets
// for a moment, a leak holds them for good, and the minimum of a short
// burst sees the second without most of the first.
const (
	sampleReads   = 5
	sampleSpacing = 200 * time.Millisecond
)

// takeSample reads the process's goroutines, open fds and RSS.
func takeSample(ctx context.Context, c *http.Client, admin string, pid int) (sample, error) {
	var s sample
	tick := time.NewTicker(sampleSpacing)
	defer tick.Stop()
	for i := range sampleReads {
		if i > 0 {
			<-tick.C
		}
		g, err := scrapeGoroutines(ctx, c, "http://"+admin+"/metrics")
		if err != nil {
			return s, err
		}
		fds, err := countFDs(pid)
		if err != nil {
			return s, err
		}
		if s.rssKiB, err = readRSS(pid); err != nil {
			return s, err
		}
		if i == 0 || g < s.goroutines {
			s.goroutines = g
		}
		if i == 0 || fds < s.fds {
			s.fds = fds
		}
	}
	return s, nil
}

// scrapeGoroutines fetches a Prometheus text exposition and returns its
// go_goroutines gauge; an exposition without it is an error.
func scrapeGoroutines(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("admin /metrics: %s", resp.Status)
	}
	return parseGauge(resp.Body, "go_goroutines")
}

// parseGauge returns the value of the unlabelled sample name in a
// Prometheus text exposition.
func parseGauge(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %s value %q: %w", name, rest, err)
		}
		return int64(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return 0, fmt.Errorf("metrics: no %s sample in the exposition", name)
}

// countFDs counts the open file descriptors of process pid.
func countFDs(pid int) (int64, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return int64(len(entries)), nil
}

// readRSS returns VmRSS of process pid in KiB.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseRSS(f)
}

// parseRSS finds "VmRSS:  <n> kB" in a /proc/PID/status document.
func parseRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"<n> kB\"", sc.Text())
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/PID/status")
}

// printHeader and printRow write the sample table; prev is the sample
// before s (for the interval's req/s).
func printHeader(w io.Writer) {
	fmt.Fprintf(w, "%8s %9s %7s %9s %6s %5s %8s  %s\n",
		"elapsed", "requests", "req/s", "2xx", "gorout", "fds", "rss MiB", "non-2xx and errors (cumulative)")
}

func printRow(w io.Writer, prev, s sample) {
	rps := 0.0
	if dt := (s.elapsed - prev.elapsed).Seconds(); dt > 0 {
		rps = float64(s.reqs.total-prev.reqs.total) / dt
	}
	fmt.Fprintf(w, "%8s %9d %7.0f %9d %6d %5d %8.1f  %s\n",
		s.elapsed.Round(time.Second), s.reqs.total, rps, s.reqs.ok(),
		s.goroutines, s.fds, float64(s.rssKiB)/1024, s.reqs.failures())
}

// metric is one resource the verdict checks, with its absolute slack.
type metric struct {
	name  string
	unit  string
	value func(sample) float64
	slack float64 // growth up to max(10 %, slack) passes
}

// maxGrowth is the relative growth allowed between the baseline and the
// last sample.
const maxGrowth = 0.10

// verdictMetrics are the verdict's resources with their slack for a run
// of the given number of workers. The slack keeps small numbers from
// failing on noise: each worker's request in flight holds a few goroutines
// and a socket or two for a moment, and the ambassador's upstream pools
// follow the peaks of concurrency (idle connections live 90 s there). So
// goroutines may grow by 16 + workers, fds by 8 + workers/2 (40 and 20 at
// the default 24 workers), RSS by 4 MiB, or by 10 % where that is more.
func verdictMetrics(workers int) []metric {
	return []metric{
		{"goroutines", "", func(s sample) float64 { return float64(s.goroutines) }, float64(16 + workers)},
		{"fds", "", func(s sample) float64 { return float64(s.fds) }, float64(8 + workers/2)},
		{"rss", " MiB", func(s sample) float64 { return float64(s.rssKiB) / 1024 }, 4},
	}
}

// verdict compares the last sample with base and writes one line per
// metric; it returns false when any grew by more than its allowance.
func verdict(w io.Writer, workers int, base, last sample) bool {
	ok := true
	for _, m := range verdictMetrics(workers) {
		b, l := m.value(base), m.value(last)
		allowed := max(b*maxGrowth, m.slack)
		pct := 0.0
		if b > 0 {
			pct = 100 * (l - b) / b
		}
		word := "ok"
		if l-b > allowed {
			word, ok = "GREW", false
		}
		fmt.Fprintf(w, "  %-10s %8.1f%s at %s -> %8.1f%s at %s (%+.1f%%; allowed +%.1f%s): %s\n",
			m.name, b, m.unit, base.elapsed.Round(time.Second), l, m.unit, last.elapsed.Round(time.Second),
			pct, allowed, m.unit, word)
	}
	return ok
}

// baseline is the first sample at or after frac of the run.
func baseline(samples []sample, d time.Duration, frac float64) (sample, bool) {
	at := time.Duration(float64(d) * frac)
	for _, s := range samples {
		if s.elapsed >= at {
			return s, true
		}
	}
	return sample{}, false
}
