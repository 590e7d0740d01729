package postgres

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// pg is the one cluster every test in this package shares; each test that
// writes makes its own database or role, so tests do not see each other.
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
	return name
}

// superConfig connects as the cluster's superuser (trusted over 127.0.0.1).
func superConfig(database string) Config {
	return Config{Host: pg.Host, Port: pg.Port, Database: database, Username: "postgres", SSLMode: "disable"}
}

func connect(t *testing.T, cfg Config) *pgxpool.Pool {
	t.Helper()
	pool, err := Connect(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Connect(%s): %v", cfg.Target(), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func exec(t *testing.T, database, sql string, args ...any) {
	t.Helper()
	if err := pg.Exec(t.Context(), database, sql, args...); err != nil {
		t.Fatal(err)
	}
}
