package task

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

var pg *testenv.Postgres

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithPostgres(m, 1, func(c []*testenv.Postgres) { pg = c[0] }))
}

func spec(src, tgt, mode string) Spec {
	cfg := func(db string) *postgres.Config {
		return &postgres.Config{Host: pg.Host, Port: pg.Port, Database: db, Username: "postgres", SSLMode: "disable"}
	}
	return Spec{Name: "cdc_task", Mode: mode, Parallelism: 2, Rules: []plan.Rule{{Source: "app.*"}},
		Source: endpoint.Spec{Postgres: cfg(src)}, Target: endpoint.Spec{Postgres: cfg(tgt)}}
}

func query(t *testing.T, db, q string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pg.SuperuserDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func digest(t *testing.T, db, table string) string {
	return query(t, db, fmt.Sprintf(`SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM %s x`, table))
}

// TestRunCDC: the first run loads from the slot's snapshot and catches up
// with writes made meanwhile; a later run applies what was written since;
// Teardown leaves no slot and no publication.
func TestRunCDC(t *testing.T) {
	ctx := t.Context()
	for _, db := range []string{"cdc_src", "cdc_tgt"} {
		if err := pg.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	// With asynchronous commit, pg_current_wal_lsn() may trail a commit just
	// made; the test wants every write of the writer inside the catch-up.
	if err := pg.Exec(ctx, "postgres", `ALTER DATABASE cdc_src SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "cdc_src", `
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, balance bigint NOT NULL, doc text);
INSERT INTO app.accounts SELECT g, g, CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 3000) END FROM generate_series(1, 30000) g;
ANALYZE;`); err != nil {
		t.Fatal(err)
	}
	s := spec("cdc_src", "cdc_tgt", ModeFullLoadAndCDC)

	write := func(from, to int) {
		conn, err := pgx.Connect(ctx, pg.SuperuserDSN("cdc_src"))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for i := from; i < to; i++ {
			var err error
			switch i % 3 {
			case 0:
				_, err = conn.Exec(ctx, `UPDATE app.accounts SET balance = balance + 7 WHERE id = $1`, i%30000+1)
			case 1:
				_, err = conn.Exec(ctx, `INSERT INTO app.accounts VALUES ($1, $2, NULL)`, 100000+i, i)
			case 2:
				_, err = conn.Exec(ctx, `DELETE FROM app.accounts WHERE id = $1`, i%30000+2)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); write(0, 3000) }()
	// Writes made from within the load certainly fall after the cut and
	// before the catch-up's WAL end, whatever the writer's pace.
	var duringLoad sync.Once
	_, p1, _, err := s.RunCDC(ctx, RunOptions{CDC: CDCOptions{CatchUpAfterLoad: true}, Progress: func(enginecopy.Event) {
		duringLoad.Do(func() { write(5000, 5300) })
	}})
	wg.Wait()
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	// Writes that ended after the first catch-up's WAL end arrive now.
	write(3000, 4500)
	status, p2, _, err := s.RunCDC(ctx, RunOptions{})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	t.Logf("first run applied %d transactions, second %d; load phase %s", p1.Transactions, p2.Transactions, status.Phase)
	// Writes of rows an earlier write deleted change nothing and decode to
	// no transaction: the digests below are the exact check.
	if p1.Transactions == 0 || p2.Transactions == 0 {
		t.Fatalf("applied %d and %d transactions; both runs had writes to catch up with", p1.Transactions, p2.Transactions)
	}
	if p2.Applied > p2.Until || p2.Applied < p1.Applied {
		t.Fatalf("checkpoints out of order: first %s, second %s, until %s", p1.Applied, p2.Applied, p2.Until)
	}
	if a, b := digest(t, "cdc_src", "app.accounts"), digest(t, "cdc_tgt", "app.accounts"); a != b {
		t.Fatalf("app.accounts differs: source %s, target %s", a, b)
	}
	// The catch-up confirmed its WAL end on the slot, not only the last commit.
	if got := query(t, "cdc_src", `SELECT (confirmed_flush_lsn >= '`+p2.Until.String()+`'::pg_lsn)::text FROM pg_replication_slots`); got != "true" {
		t.Fatalf("slot confirmed before the catch-up's WAL end %s: %s", p2.Until, got)
	}
	// A run with nothing new applies nothing and confirms the WAL end.
	_, p3, _, err := s.RunCDC(ctx, RunOptions{})
	if err != nil || p3.Transactions != 0 {
		t.Fatalf("idle run: %d transactions, %v; want 0, nil", p3.Transactions, err)
	}
	if err := s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, "cdc_src", `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)`); got != "0" {
		t.Fatalf("teardown left %s slots and publications", got)
	}
}
