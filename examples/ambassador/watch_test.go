package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run the binary with -watch and change its config file in the
// ways deploy tools do. A reload is observed through the traffic (the
// config names upstream "one" or "two") and counted through
// outbound_config_reloads_total on /metrics and the "config reloaded" /
// "reload failed" log lines. Counts are read only after a last change is
// seen to serve, which every reload before it preceded, and bytes already
// loaded are never reloaded from a file change, so a count read then is
// final: the checks do not depend on how long the test waits.

// watchCfg is a config with the admin listener at admin and one listener at
// lis sending everything to service svc at upstream (host:port).
func watchCfg(admin, lis, upstream string) string {
	return fmt.Sprintf("admin: {address: %s}\nlisteners: [{address: %s, service: svc}]\nservices:\n  svc: {discovery: {static: [%s]}}\n",
		admin, lis, upstream)
}

// watchedProc is an ambassador run with -watch on the config at path.
type watchedProc struct {
	*proc
	lis string        // the service listener's address
	log func() string // everything the process wrote so far
	c   *http.Client
}

// startWatched runs the binary with -config path -watch and waits until
// lis serves want. With logFile set, its stdout and stderr go to that file
// (the process's log in the config's directory); else to memory.
func startWatched(t *testing.T, path, admin, lis, logFile, want string) *watchedProc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, "-config", path, "-watch"), out: &syncBuf{}, done: make(chan struct{}),
		admin: "http://" + admin, path: path}
	log := p.out.String
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		require.NoError(t, err)
		defer f.Close() // the child has its own descriptor
		p.cmd.Stdout, p.cmd.Stderr = f, f
		log = func() string { b, _ := os.ReadFile(logFile); return string(b) }
	} else {
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	}
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			out := log()
			if len(out) > 8000 {
				out = out[:4000] + "\n...\n" + out[len(out)-4000:]
			}
			t.Logf("ambassador output (%d lines):\n%s", strings.Count(log(), "\n"), out)
		}
	})
	w := &watchedProc{proc: p, lis: lis, log: log, c: newClient(t)}
	w.waitServes(t, want, 15*time.Second)
	return w
}

// waitServes waits until the listener answers want.
func (w *watchedProc) waitServes(t *testing.T, want string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		select {
		case <-w.done:
			return true // fail below with the output
		default:
		}
		return answers(w.c, "http://"+w.lis+"/", want)
	}, within, 10*time.Millisecond)
	select {
	case <-w.done:
		t.Fatalf("ambassador exited (code %d)", w.cmd.ProcessState.ExitCode())
	default:
	}
}

// reloads returns outbound_config_reloads_total{result=...} from /metrics
// (0 when the series is absent).
func (w *watchedProc) reloads(t *testing.T, result string) int {
	t.Helper()
	n, err := w.reloadCount(result)
	require.NoError(t, err)
	return n
}

// reloadCount is reloads for require.Eventually conditions, which must not
// fail the test themselves.
func (w *watchedProc) reloadCount(result string) (int, error) {
	resp, err := w.c.Get(w.admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	const name = "outbound_config_reloads_total{"
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		labels, value, ok := strings.Cut(sc.Text(), "} ")
		if !ok || !strings.HasPrefix(labels, name) || !strings.Contains(labels, `result="`+result+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		return int(v), err
	}
	return 0, sc.Err()
}

// settled waits until success and failure reloads show in the metric and
// the log, then checks that there are exactly that many: every change of
// the test has been seen by then, so a count above is a reload too many.
func (w *watchedProc) settled(t *testing.T, success, failure int) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err1 := w.reloadCount("success")
		f, err2 := w.reloadCount("failure")
		return err1 == nil && err2 == nil && s >= success && f >= failure &&
			w.lines("config reloaded") >= success && w.lines("reload failed") >= failure
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, success, w.reloads(t, "success"), "outbound_config_reloads_total{result=success}")
	assert.Equal(t, failure, w.reloads(t, "failure"), "outbound_config_reloads_total{result=failure}")
	assert.Equal(t, success, w.lines("config reloaded"), "config reloaded lines")
	assert.Equal(t, failure, w.lines("reload failed"), "reload failed lines")
}

// lines counts the log lines containing s.
func (w *watchedProc) lines(s string) int { return strings.Count(w.log(), s) }

// Issue 11: with the process's log file in the config's directory, one bad
// edit made every log line an event, every event a failed reload, and every
// failed reload a log line: thousands a second until the file was fixed.
func TestWatchIgnoresItsOwnLogFile(t *testing.T) {
	one, two := textUpstream(t, "one"), textUpstream(t, "two")
	dir := t.TempDir()
	admin, lis := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(one.URL))), 0o600))
	w := startWatched(t, path, admin, lis, filepath.Join(dir, "ambassador.log"), "one")

	require.NoError(t, os.WriteFile(path, []byte("listeners: [oops"), 0o600))
	require.Eventually(t, func() bool { return w.lines("reload failed") > 0 }, 5*time.Second, 10*time.Millisecond)
	c := newClient(t)
	for range 20 { // each request logs a line into the directory
		_, body := get(t, c, "http://"+lis+"/")
		require.Equal(t, "one", body, "the old config keeps serving")
	}

	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(two.URL))), 0o600))
	w.waitServes(t, "two", 5*time.Second)
	w.settled(t, 1, 1) // one failed reload for one bad edit
}

// Each way a config file is replaced is one reload of the new content.
func TestWatchAppliesEveryWayOfUpdating(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	cases := []struct {
		name string
		// setup writes the first config and returns the path to run with.
		setup func(t *testing.T, dir, content string) string
		// update replaces it with content.
		update func(t *testing.T, dir, path, content string)
	}{{
		name: "write in place",
		setup: func(t *testing.T, dir, content string) string {
			path := filepath.Join(dir, "ambassador.yaml")
			write(t, path, content)
			return path
		},
		update: func(t *testing.T, dir, path, content string) { write(t, path, content) },
	}, {
		name: "rename over",
		setup: func(t *testing.T, dir, content string) string {
			path := filepath.Join(dir, "ambassador.yaml")
			write(t, path, content)
			return path
		},
		update: func(t *testing.T, dir, path, content string) {
			write(t, path+".tmp", content)
			require.NoError(t, os.Rename(path+".tmp", path))
		},
	}, {
		// A Kubernetes ConfigMap volume: cfg.yaml -> ..data/cfg.yaml,
		// ..data -> ..<timestamp>; an update writes a new timestamped
		// directory, points ..data_tmp at it, renames that over ..data and
		// removes the old directory.
		name: "ConfigMap ..data swap",
		setup: func(t *testing.T, dir, content string) string {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "..2026_12_01_00_00_00.1"), 0o700))
			write(t, filepath.Join(dir, "..2026_12_01_00_00_00.1", "cfg.yaml"), content)
			require.NoError(t, os.Symlink("..2026_12_01_00_00_00.1", filepath.Join(dir, "..data")))
			path := filepath.Join(dir, "cfg.yaml")
			require.NoError(t, os.Symlink(filepath.Join("..data", "cfg.yaml"), path))
			return path
		},
		update: func(t *testing.T, dir, path, content string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "..2026_12_01_00_05_00.2"), 0o700))
			write(t, filepath.Join(dir, "..2026_12_01_00_05_00.2", "cfg.yaml"), content)
			require.NoError(t, os.Symlink("..2026_12_01_00_05_00.2", filepath.Join(dir, "..data_tmp")))
			require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "..2026_12_01_00_00_00.1")))
		},
	}, {
		// The config path is a symlink to a file elsewhere, edited there.
		name: "symlink target written in place",
		setup: func(t *testing.T, dir, content string) string {
			target := filepath.Join(t.TempDir(), "real.yaml")
			write(t, target, content)
			path := filepath.Join(dir, "ambassador.yaml")
			require.NoError(t, os.Symlink(target, path))
			return path
		},
		update: func(t *testing.T, dir, path, content string) {
			target, err := os.Readlink(path)
			require.NoError(t, err)
			write(t, target, content)
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			one, two := textUpstream(t, "one"), textUpstream(t, "two")
			dir := t.TempDir()
			admin, lis := freeAddr(t), freeAddr(t)
			path := tc.setup(t, dir, watchCfg(admin, lis, hostOf(one.URL)))
			w := startWatched(t, path, admin, lis, "", "one")
			tc.update(t, dir, path, watchCfg(admin, lis, hostOf(two.URL)))
			w.waitServes(t, "two", 5*time.Second)
			w.settled(t, 1, 0)
		})
	}
}

// A burst of writes (a tool writing a file in pieces, an editor saving
// twice) is one reload of the last content.
func TestWatchBurstIsOneReload(t *testing.T) {
	one, two := textUpstream(t, "one"), textUpstream(t, "two")
	dir := t.TempDir()
	admin, lis := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(one.URL))), 0o600))
	w := startWatched(t, path, admin, lis, "", "one")

	const writes = 20
	start := time.Now()
	for i := range writes {
		up := one
		if i == writes-1 {
			up = two
		}
		// Every write is a different, valid config.
		content := watchCfg(admin, lis, hostOf(up.URL)) + fmt.Sprintf("# write %d\n", i)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	t.Logf("%d writes in %s", writes, time.Since(start))
	w.waitServes(t, "two", 5*time.Second)
	w.settled(t, 1, 0) // one reload for the burst
}

// Writing, creating and renaming other files in the config's directory
// reloads nothing: with a bad config in place, no further failure is logged.
func TestWatchIgnoresOtherFiles(t *testing.T) {
	one, two := textUpstream(t, "one"), textUpstream(t, "two")
	dir := t.TempDir()
	admin, lis := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(one.URL))), 0o600))
	w := startWatched(t, path, admin, lis, "", "one")

	require.NoError(t, os.WriteFile(path, []byte("listeners: [oops"), 0o600))
	require.Eventually(t, func() bool { return w.lines("reload failed") > 0 }, 5*time.Second, 10*time.Millisecond)
	notes := filepath.Join(dir, "notes.txt")
	for i := range 20 {
		require.NoError(t, os.WriteFile(notes, []byte(strconv.Itoa(i)), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.yaml.tmp"), []byte("x: 1"), 0o600))
	require.NoError(t, os.Rename(filepath.Join(dir, "other.yaml.tmp"), filepath.Join(dir, "other.yaml")))
	require.NoError(t, os.Remove(notes))
	_, body := get(t, newClient(t), "http://"+lis+"/")
	require.Equal(t, "one", body, "the old config keeps serving")

	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(two.URL))), 0o600))
	w.waitServes(t, "two", 5*time.Second)
	w.settled(t, 1, 1) // other files caused no reload
}

// /metrics counts every reload, SIGHUP's too, by result; SIGHUP reloads
// even when the file has not changed.
func TestReloadsMetric(t *testing.T) {
	one, two := textUpstream(t, "one"), textUpstream(t, "two")
	dir := t.TempDir()
	admin, lis := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(one.URL))), 0o600))
	w := startWatched(t, path, admin, lis, "", "one")
	assert.Equal(t, 0, w.reloads(t, "success"))
	assert.Equal(t, 0, w.reloads(t, "failure"))

	w.signal(t, syscall.SIGHUP) // unchanged file: reloaded all the same
	require.Eventually(t, func() bool { return w.reloads(t, "success") == 1 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte("listeners: [oops"), 0o600)) // -watch: failure 1
	require.Eventually(t, func() bool { return w.reloads(t, "failure") == 1 }, 5*time.Second, 10*time.Millisecond)
	w.signal(t, syscall.SIGHUP) // the same bad file: failure 2
	require.Eventually(t, func() bool { return w.reloads(t, "failure") == 2 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte(watchCfg(admin, lis, hostOf(two.URL))), 0o600)) // success 2
	w.waitServes(t, "two", 5*time.Second)
	w.settled(t, 2, 2)
	_, body := get(t, newClient(t), w.admin+"/metrics")
	assert.Regexp(t, `(?m)^outbound_config_reloads_total\{[^}]*result="success"[^}]*\} 2$`, body)
	assert.Regexp(t, `(?m)^outbound_config_reloads_total\{[^}]*result="failure"[^}]*\} 2$`, body)
}
