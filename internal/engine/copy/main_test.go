package copy //nolint:predeclared // see doc.go

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// srcPG and tgtPG are the two clusters every test shares: a full load
// always crosses clusters, as in production, so type OIDs differ. Each test
// makes its own database on both.
var srcPG, tgtPG *testenv.Postgres

func TestMain(m *testing.M) {
	// Retry-free short waits in tests that contend for a task.
	lockWait = 2 * time.Second
	os.Exit(testenv.RunWithPostgres(m, 2, func(c []*testenv.Postgres) { srcPG, tgtPG = c[0], c[1] }))
}

// env is one test's source and target databases.
type env struct {
	t        *testing.T
	db       string
	src, tgt *pgxpool.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	name := testenv.DatabaseName(t)
	e := &env{t: t, db: name}
	for _, pg := range []*testenv.Postgres{srcPG, tgtPG} {
		if err := pg.CreateDatabase(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	e.src = newPool(t, srcPG.SuperuserDSN(name))
	e.tgt = newPool(t, tgtPG.SuperuserDSN(name))
	return e
}

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func (e *env) execSrc(sql string) {
	e.t.Helper()
	if err := srcPG.Exec(e.t.Context(), e.db, sql); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) execTgt(sql string) {
	e.t.Helper()
	if err := tgtPG.Exec(e.t.Context(), e.db, sql); err != nil {
		e.t.Fatal(err)
	}
}

// digest is an order-independent digest of a relation's rows (or of a
// query's) and their count.
func digest(t *testing.T, pool *pgxpool.Pool, from string) string {
	t.Helper()
	var d *string
	var n int64
	err := pool.QueryRow(context.Background(),
		`SELECT md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), count(*) FROM `+from+` t`).Scan(&d, &n)
	if err != nil {
		t.Fatalf("digest of %s: %v", from, err)
	}
	if d == nil {
		return "empty"
	}
	return fmt.Sprintf("%s/%d", *d, n)
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// events collects Progress events.
type events struct {
	ch chan Event
}

func newEvents() *events { return &events{ch: make(chan Event, 100000)} }

func (ev *events) record(e Event) { ev.ch <- e }

// drain returns the events so far.
func (ev *events) drain() []Event {
	var out []Event
	for {
		select {
		case e := <-ev.ch:
			out = append(out, e)
		default:
			return out
		}
	}
}

func chunkEvents(evs []Event) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		if e.Chunk > 0 {
			out[e.Table]++
		}
	}
	return out
}

// mustRun fails t when Run does: mustRun(t)(Run(...)).
func mustRun(t *testing.T) func(Status, error) Status {
	t.Helper()
	return func(st Status, err error) Status {
		t.Helper()
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return st
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
