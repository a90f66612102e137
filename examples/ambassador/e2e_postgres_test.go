package main

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/testserver"
)

// TestPostgresSessionThroughTCPListener runs a real PostgreSQL session
// (pgx: startup and authentication, queries with parameters, a 1 MiB value
// each way, transactions rolled back and committed) through the
// ambassador's tcp listener, and checks on the server that the session came
// from the ambassador's side of the hop.
func TestPostgresSessionThroughTCPListener(t *testing.T) {
	pg := testserver.StartPostgres(t)
	admin, lis := freeAddr(t), freeAddr(t)
	runAmbassador(t, admin, fmt.Sprintf(`admin: {address: %s}
listeners: [{address: %s, protocol: tcp, service: db}]
services:
  db:
    protocol: tcp
    discovery: {static: [%s]}
    tcp: {connect_timeout: 2s}
`, admin, lis, pg.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	conn, err := pgx.Connect(ctx, "postgres://postgres@"+lis+"/postgres?sslmode=disable")
	require.NoError(t, err)
	defer conn.Close(ctx)

	// The server sees the ambassador's upstream socket, not ours.
	var serverSeesPort int
	require.NoError(t, conn.QueryRow(ctx, "SELECT inet_client_port()").Scan(&serverSeesPort))
	ourPort := conn.PgConn().Conn().LocalAddr().(*net.TCPAddr).Port
	require.NotEqual(t, ourPort, serverSeesPort, "the session did not pass through the ambassador")

	var sum int
	var joined string
	require.NoError(t, conn.QueryRow(ctx, "SELECT $1::int + $2::int, $3::text || $4::text", 40, 2, "out", "bound").Scan(&sum, &joined))
	require.Equal(t, 42, sum)
	require.Equal(t, "outbound", joined)

	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	want := md5.Sum(big)
	var gotSum string
	var echoed []byte
	require.NoError(t, conn.QueryRow(ctx, "SELECT md5($1::bytea), $1::bytea", big).Scan(&gotSum, &echoed))
	require.Equal(t, hex.EncodeToString(want[:]), gotSum, "the server got other bytes than we sent")
	require.Equal(t, big, echoed, "we got other bytes than the server sent")

	postgresTransactions(ctx, t, conn, pg.URL)
}

// postgresTransactions rolls one transaction back and commits another on
// conn, and checks the outcome on a direct connection to the server.
func postgresTransactions(ctx context.Context, t *testing.T, conn *pgx.Conn, directURL string) {
	t.Helper()
	_, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
	require.NoError(t, err)

	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO items VALUES ($1, $2)", 1, "rolled back")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	tx, err = conn.Begin(ctx)
	require.NoError(t, err)
	for i, name := range []string{"a", "b", "c"} {
		_, err = tx.Exec(ctx, "INSERT INTO items VALUES ($1, $2)", i+10, name)
		require.NoError(t, err)
	}
	_, err = tx.Exec(ctx, "INSERT INTO items VALUES ($1, $2)", 10, "duplicate")
	require.Error(t, err, "a duplicate key must fail inside the transaction")
	require.NoError(t, tx.Rollback(ctx))

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1, $2), ($3, $4)", 20, "x", 21, "y")
		return err
	})
	require.NoError(t, err)

	direct, err := pgx.Connect(ctx, directURL)
	require.NoError(t, err)
	defer direct.Close(ctx)
	rows, err := direct.Query(ctx, "SELECT id, name FROM items ORDER BY id")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id int
		var name string
		err := r.Scan(&id, &name)
		return fmt.Sprintf("%d=%s", id, name), err
	})
	require.NoError(t, err)
	require.Equal(t, []string{"20=x", "21=y"}, got, "only the committed transaction's rows")
}
