package postgres

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// pg is the one cluster every test in this package shares; each test that
// writes makes its own database or role, so tests do not see each other.
var pg *testenv.Postgres

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	p, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	cancel()
	if err != nil {
		// A missing server is a failure, never a skip.
		fmt.Fprintf(os.Stderr, "starting postgres: %v\n", err)
		return 1
	}
	pg = p
	code := m.Run()
	if err := p.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping postgres: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var dbSeq atomic.Int64

// newDatabase creates an empty database named after the test.
func newDatabase(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("%s_%d", strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")), dbSeq.Add(1))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
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
