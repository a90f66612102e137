package testserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a PostgreSQL server a test started, with trust authentication
// on 127.0.0.1 for the superuser "postgres".
type Postgres struct {
	*Process
	// Addr is the server's host:port on loopback.
	Addr string
	// URL is a connection string for database postgres as user postgres,
	// without TLS: postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
	URL string
	// Dir holds the data directory (Dir/data) and the unix socket.
	Dir string

	bin  string
	port int
	cred *syscall.Credential
}

// postgresRoot is where Debian installs the server binaries, one
// VERSION/bin directory per major version, outside PATH.
var postgresRoot = "/usr/lib/postgresql"

// postgresUser is the account the server runs as when the tests run as root
// (CI does): PostgreSQL refuses to run as root.
const postgresUser = "nobody"

// StartPostgres runs initdb into a fresh temporary directory and starts
// postgres on a free loopback port (Debian package postgresql; its binaries
// are found in PATH or under /usr/lib/postgresql/*/bin, the newest version
// first; the environment variable OUTBOUND_POSTGRES_BIN names another
// directory). Under root both run as the user nobody, who owns the
// directory. fsync is off: the data is the test's only. It returns once the
// server accepts connections and stops it (fast shutdown) and removes the
// directory when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	cred := postgresCred(t)
	dir, err := os.MkdirTemp("", "outbound-postgres-")
	if err != nil {
		t.Fatalf("testserver: postgres dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // after the server's stop: cleanups run last first
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("testserver: postgres dir: %v", err)
		}
	}
	pg := &Postgres{Dir: dir, bin: bin, port: FreePort(t), cred: cred}
	pg.Addr = loopback(pg.port)
	pg.URL = "postgres://postgres@" + pg.Addr + "/postgres?sslmode=disable"
	pg.initdb(t)
	args := []string{
		"-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(pg.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-F", "-c", "max_connections=50",
	}
	pg.Process = startProcess(t, "postgres", filepath.Join(bin, "postgres"), dir, args, pg.Ready,
		func(p *Process) { p.cred, p.stop = cred, syscall.SIGINT })
	return pg
}

// Restart starts the server again after Stop, on the same port and data.
func (pg *Postgres) Restart() { pg.Start(pg.Ready) }

// Ready reports nil once the server accepts connections (pg_isready: a
// server still starting up accepts TCP but refuses sessions).
func (pg *Postgres) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, "pg_isready"),
		"-q", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", "-d", "postgres", "-t", "1")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("postgres on %s not ready: %w", pg.Addr, err)
	}
	return nil
}

// initdb creates the cluster in Dir/data: trust authentication, superuser
// postgres, locale C, no fsync.
func (pg *Postgres) initdb(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, "initdb"),
		"-D", filepath.Join(pg.Dir, "data"), "-U", "postgres", "--auth=trust",
		"--no-sync", "--no-instructions", "--locale=C", "-E", "UTF8")
	cmd.Dir = pg.Dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testserver: initdb: %v\n%s", err, out)
	}
}

// postgresBin is the directory holding initdb, postgres and pg_isready.
func postgresBin(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("OUTBOUND_POSTGRES_BIN"); d != "" {
		return d
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real)
		}
		return filepath.Dir(p)
	}
	if d := newestPostgresBin(postgresRoot); d != "" {
		return d
	}
	p := Need(t, "", "initdb", "postgresql") // skips, or fails under CI=true
	return filepath.Dir(p)
}

// newestPostgresBin returns root/VERSION/bin of the highest numeric VERSION
// that has an initdb, or "" when there is none (Debian installs the server
// binaries there, outside PATH).
func newestPostgresBin(root string) string {
	found, _ := filepath.Glob(filepath.Join(root, "*", "bin", "initdb"))
	version := func(p string) int {
		v := filepath.Base(filepath.Dir(filepath.Dir(p)))
		n, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if err != nil {
			return -1
		}
		return n
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	if len(found) == 0 {
		return ""
	}
	return filepath.Dir(found[0])
}

// postgresCred is the user initdb and postgres run as: nil (this process's
// own user) unless this process is root, then postgresUser.
func postgresCred(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(postgresUser)
	if err != nil {
		t.Fatalf("testserver: running as root, postgres needs the user %q: %v", postgresUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("testserver: user %q has uid %q gid %q", postgresUser, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
