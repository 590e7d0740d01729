package cdc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// TestFullLoadThenCDCUnderWrites is DESIGN.md's first invariant end to end:
// the full load reads the snapshot the slot exported, CDC starts at the
// slot's consistent point, and while a writer keeps inserting, updating
// (leaving a TOASTed column unchanged), deleting and adding a column, the
// target ends equal to the source — no gap, no double apply.
func TestFullLoadThenCDCUnderWrites(t *testing.T) {
	ctx := t.Context()
	srcDB, tgtDB := newDatabase(t), newDatabase(t)
	exec(t, srcDB, `
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, balance bigint NOT NULL, doc text);
CREATE TABLE app.events (id int, kind text, payload text);
ALTER TABLE app.events REPLICA IDENTITY FULL;
INSERT INTO app.accounts SELECT g, g * 10, CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 4000) END FROM generate_series(1, 20000) g;
INSERT INTO app.events SELECT g % 100, 'seed', 'p' || (g % 7) FROM generate_series(1, 5000) g;
ANALYZE;`)
	src := source(srcDB)
	const task = "e2e"

	// The writer runs from before the cut until after the load.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	writes := 0
	go func() {
		defer wg.Done()
		conn := sqlConn(t, srcDB)
		defer conn.Close(context.Background())
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + r.IntN(25000)
			var err error
			switch i % 5 {
			case 0:
				_, err = conn.Exec(ctx, `INSERT INTO app.accounts VALUES ($1, $2, NULL) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance`, id, i)
			case 1:
				_, err = conn.Exec(ctx, `UPDATE app.accounts SET balance = balance + 1 WHERE id = $1`, id) // doc (TOASTed) unchanged
			case 2:
				_, err = conn.Exec(ctx, `DELETE FROM app.accounts WHERE id = $1`, id)
			case 3:
				_, err = conn.Exec(ctx, `INSERT INTO app.events VALUES ($1, 'live', 'x')`, id%100)
			case 4:
				_, err = conn.Exec(ctx, `DELETE FROM app.events WHERE ctid = (SELECT ctid FROM app.events WHERE id = $1 LIMIT 1)`, id%100)
			}
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("writer: %v", err)
				}
				return
			}
			writes++
		}
	}()
	time.Sleep(200 * time.Millisecond)

	tables := []string{"app.accounts", "app.events"}
	cut, hold, err := src.Setup(ctx, task, tables)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	srcPool, tgtPool := pool(t, srcDB), pool(t, tgtDB)
	srcCat, err := postgres.ReadCatalog(ctx, srcPool, postgres.Filter{Schemas: []string{"app"}})
	if err != nil {
		t.Fatal(err)
	}
	p, problems := plan.Build(srcCat, nil, []plan.Rule{{Source: "app.*"}})
	if len(problems) > 0 {
		t.Fatalf("plan: %v", problems)
	}
	status, err := enginecopy.Run(ctx, srcPool, tgtPool, p, p.Fingerprint(), enginecopy.Options{Task: task, Parallelism: 2, Snapshot: cut.Snapshot, ChunkBytes: 256 << 10})
	if err != nil {
		t.Fatalf("full load from the slot's snapshot: %v", err)
	}
	if err := hold.Close(); err != nil {
		t.Fatal(err)
	}
	// A column added while changes flow.
	exec(t, srcDB, `ALTER TABLE app.accounts ADD COLUMN note text`)
	exec(t, srcDB, `INSERT INTO app.accounts VALUES (900001, 1, NULL, 'added column')`)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	var until pgoutput.LSN
	var lsnText string
	if err := srcPool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsnText); err != nil {
		t.Fatal(err)
	}
	if until, err = pgoutput.ParseLSN(lsnText); err != nil {
		t.Fatal(err)
	}
	applier := NewApplier(tgtPool, task, p)
	var mu sync.Mutex
	applied := cut.ConsistentPoint
	txns := 0
	err = src.Read(ctx, task, cut.ConsistentPoint, until, 1<<20, func(batch []Txn) error {
		lsn, err := applier.Apply(ctx, batch)
		if err != nil {
			return err
		}
		mu.Lock()
		applied, txns = lsn, txns+len(batch)
		mu.Unlock()
		return nil
	}, func() pgoutput.LSN { mu.Lock(); defer mu.Unlock(); return applied })
	if err != nil {
		t.Fatalf("catch-up: %v", err)
	}
	t.Logf("load copied %d rows of %d tables; writer made %d changes; CDC applied %d transactions", rowsOf(status), len(status.Tables), writes, txns)
	if txns == 0 {
		t.Fatal("CDC applied nothing: the writer's changes after the cut never arrived")
	}
	for _, tbl := range tables {
		if a, b := digestOf(t, srcPool, tbl), digestOf(t, tgtPool, tbl); a != b {
			t.Errorf("%s differs after load + CDC: source %s, target %s", tbl, a, b)
		}
	}
}

func pool(t *testing.T, db string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), pg.SuperuserDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func rowsOf(s enginecopy.Status) int64 {
	var n int64
	for _, t := range s.Tables {
		n += t.Rows
	}
	return n
}

// digestOf is an order-independent digest of a table's rows with their count.
func digestOf(t *testing.T, p *pgxpool.Pool, table string) string {
	t.Helper()
	var n int64
	var sum string
	q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM %s x`, table)
	if err := p.QueryRow(t.Context(), q).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, md5 %s", n, sum)
}
