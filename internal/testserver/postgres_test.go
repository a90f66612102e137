package testserver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresQueryStopRestart(t *testing.T) {
	began := time.Now()
	pg := StartPostgres(t)
	t.Logf("postgres: initdb and start took %s", time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatalf("connect %s: %v", pg.URL, err)
	}
	var sum int
	var who string
	if err := conn.QueryRow(ctx, "SELECT $1::int + $2::int, current_user", 40, 2).Scan(&sum, &who); err != nil {
		t.Fatal(err)
	}
	if sum != 42 || who != "postgres" {
		t.Fatalf("got %d as %q, want 42 as postgres", sum, who)
	}
	_ = conn.Close(ctx)

	pg.Stop()
	if pg.Ready() == nil {
		t.Fatal("postgres ready after Stop")
	}
	if c, err := pgx.Connect(ctx, pg.URL); err == nil {
		_ = c.Close(ctx)
		t.Fatal("connected after Stop")
	}
	pg.Restart()
	conn, err = pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatalf("connect after Restart: %v", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&sum); err != nil || sum != 1 {
		t.Fatalf("SELECT 1 after Restart: %d, %v", sum, err)
	}
}

func TestNewestPostgresBin(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13", "notaversion"} {
		mkfile(t, root+"/"+v+"/bin/initdb")
	}
	if got, want := newestPostgresBin(root), root+"/15/bin"; got != want {
		t.Fatalf("newestPostgresBin = %q, want %q", got, want)
	}
	if got := newestPostgresBin(t.TempDir()); got != "" {
		t.Fatalf("empty root: %q, want \"\"", got)
	}
}

func mkfile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresMissingSkips(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("OUTBOUND_POSTGRES_BIN", "")
	t.Setenv("CI", "")
	saved := postgresRoot
	postgresRoot = t.TempDir()
	t.Cleanup(func() { postgresRoot = saved })

	var sub *testing.T
	t.Run("missing", func(st *testing.T) {
		sub = st
		StartPostgres(st)
		st.Error("StartPostgres returned without initdb anywhere")
	})
	if !sub.Skipped() {
		t.Fatal("StartPostgres did not skip the test when initdb is missing")
	}
}
