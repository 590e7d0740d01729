package cdc

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// pg is the one cluster the package's tests share; each test makes its own
// database and task name, so tests do not see each other's slots.
var pg *testenv.Postgres

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithPostgres(m, 1, func(c []*testenv.Postgres) { pg = c[0] }))
}

// newDatabase creates an empty database named after the test.
func newDatabase(t *testing.T) string {
	t.Helper()
	name := testenv.DatabaseName(t)
	if err := pg.CreateDatabase(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	// The cluster commits asynchronously; then pg_current_wal_lsn() may lag
	// a commit just made, and a Read up to it would rightly leave it out.
	exec(t, "postgres", "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET synchronous_commit = on")
	return name
}

func source(database string) Source {
	return Source{Config: postgres.Config{Host: pg.Host, Port: pg.Port, Database: database, Username: "postgres", SSLMode: "disable"}}
}

func exec(t *testing.T, database, sql string, args ...any) {
	t.Helper()
	if err := pg.Exec(t.Context(), database, sql, args...); err != nil {
		t.Fatal(err)
	}
}

func sqlConn(t *testing.T, database string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pg.SuperuserDSN(database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func queryLSN(t *testing.T, database, sql string, args ...any) pgoutput.LSN {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pg.SuperuserDSN(database))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var s *string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return 0
	}
	lsn, err := pgoutput.ParseLSN(*s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// walEnd is pg_current_wal_lsn(), what an apply reads at its start.
func walEnd(t *testing.T, database string) pgoutput.LSN {
	t.Helper()
	return queryLSN(t, database, `SELECT pg_current_wal_lsn()::text`)
}

func confirmedFlush(t *testing.T, database, task string) pgoutput.LSN {
	t.Helper()
	return queryLSN(t, database, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, SlotName(task))
}
