package cdc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// applyTarget starts a cluster, runs ddl on a fresh "tgt" database and
// returns a pool on it.
func applyTarget(t *testing.T, ddl string) *pgxpool.Pool {
	t.Helper()
	pool, _ := applyTargetPG(t, ddl)
	return pool
}

func applyTargetPG(t *testing.T, ddl string) (*pgxpool.Pool, *testenv.Postgres) {
	t.Helper()
	ctx := t.Context()
	pg := testenv.StartPostgresT(t, testenv.PostgresOptions{})
	if err := pg.CreateDatabase(ctx, "tgt"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "tgt", ddl); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pg.SuperuserDSN("tgt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, pg
}

// applyCol is shorthand for an untransformed plan column.
func applyPlanCol(name, typ string) plan.Column {
	return plan.Column{Source: name, Target: name, SourceType: typ, TargetType: typ, Expr: pgx.Identifier{name}.Sanitize()}
}

func applyPlanTable(schema, name string, key []string, cols ...plan.Column) plan.Table {
	src := catalog.Table{Schema: schema, Name: name, Kind: "table", PrimaryKey: key}
	for _, c := range cols {
		src.Columns = append(src.Columns, catalog.Column{Name: c.Source, Type: c.SourceType})
	}
	return plan.Table{Source: src, Target: plan.Name{Schema: schema, Name: name}, Columns: cols, Key: key}
}

// applyNull and applyKeep stand for a NULL and an unchanged TOAST value in
// applyVals.
const (
	applyNull = "\x00null"
	applyKeep = "\x00keep"
)

func applyVals(vs ...string) []Value {
	out := make([]Value, len(vs))
	for i, v := range vs {
		switch v {
		case applyNull:
			out[i] = Value{Kind: 'n'}
		case applyKeep:
			out[i] = Value{Kind: 'u'}
		default:
			out[i] = Value{Kind: 't', Data: []byte(v)}
		}
	}
	return out
}

// itemsCols are the source columns of public.items (id int4 key, name text, note text).
var applyItemsCols = []Column{{Name: "id", TypeOID: 23, TypeMod: -1, Key: true}, {Name: "name", TypeOID: 25, TypeMod: -1}, {Name: "note", TypeOID: 25, TypeMod: -1}}

const applyItemsDDL = `CREATE TABLE public.items (id int4 PRIMARY KEY, name text, note text);`

func applyItemsPlan() *plan.Plan {
	return &plan.Plan{Tables: []plan.Table{applyPlanTable("public", "items", []string{"id"},
		applyPlanCol("id", "integer"), applyPlanCol("name", "text"), applyPlanCol("note", "text"))}}
}

func applyIns(table string, cols []Column, vs ...string) Change {
	return Change{Op: Insert, Schema: "public", Table: table, Columns: cols, New: applyVals(vs...)}
}

func applyUpd(table string, cols []Column, old []Value, vs ...string) Change {
	return Change{Op: Update, Schema: "public", Table: table, Columns: cols, New: applyVals(vs...), Old: old, OldIsKey: true}
}

func applyDel(table string, cols []Column, old []Value, full bool) Change {
	return Change{Op: Delete, Schema: "public", Table: table, Columns: cols, Old: old, OldIsKey: !full}
}

func applyTxn(lsn pgoutput.LSN, changes ...Change) Txn {
	return Txn{XID: uint32(lsn), CommitLSN: lsn, EndLSN: lsn + 1, CommitTime: time.Now(), Changes: changes}
}

// applyDump returns the rows of query as "a|b|c" strings, NULL as "∅".
func applyDump(t *testing.T, pool *pgxpool.Pool, query string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), query, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := rows.RawValues()
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "∅"
			} else {
				parts[i] = string(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func applyWant(t *testing.T, pool *pgxpool.Pool, query string, want ...string) {
	t.Helper()
	got := applyDump(t, pool, query)
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", query, got, want)
	}
}

func applyMust(t *testing.T, a *Applier, want pgoutput.LSN, txns ...Txn) {
	t.Helper()
	got, err := a.Apply(t.Context(), txns)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Apply returned checkpoint %s, want %s", got, want)
	}
}

func TestApplyInsertUpdateDeleteReplay(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	ctx := t.Context()
	a := NewApplier(pool, "shop", applyItemsPlan())
	if cp, err := a.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("Checkpoint = %s, %v; want 0/0", cp, err)
	}
	c := applyItemsCols
	txns := []Txn{
		applyTxn(100, applyIns("items", c, "1", "one", "a"), applyIns("items", c, "2", "two", "b"), applyIns("items", c, "3", "three", applyNull)),
		applyTxn(200, applyUpd("items", c, nil, "2", "TWO", "b\tc\\d\ne")),
		applyTxn(300, applyDel("items", c, applyVals("3", applyNull, applyNull), false), applyIns("items", c, "4", "four", "x")),
		applyTxn(400, applyUpd("items", c, nil, "4", "FOUR", "y"), applyDel("items", c, applyVals("1", applyNull, applyNull), false)),
	}
	applyMust(t, a, 400, txns...)
	want := []string{"2|TWO|b\tc\\d\ne", "4|FOUR|y"}
	const q = "SELECT id, name, note FROM items ORDER BY id"
	applyWant(t, pool, q, want...)
	if cp, err := a.Checkpoint(ctx); err != nil || cp != 400 {
		t.Fatalf("Checkpoint = %s, %v; want 0/190", cp, err)
	}

	// Replaying what the checkpoint covers is skipped: a hand edit survives.
	if _, err := pool.Exec(ctx, "UPDATE items SET name = 'edited' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	applyMust(t, a, 400, txns...)
	applyWant(t, pool, q, "2|edited|b\tc\\d\ne", "4|FOUR|y")

	// With an older checkpoint the replay rewrites the same rows.
	if _, err := pool.Exec(ctx, "UPDATE _migration.cdc SET lsn = '0/C8' WHERE task = 'shop'"); err != nil {
		t.Fatal(err)
	}
	applyMust(t, a, 400, txns...)
	applyWant(t, pool, q, "2|edited|b\tc\\d\ne", "4|FOUR|y")
	if _, err := pool.Exec(ctx, "UPDATE _migration.cdc SET lsn = '0/0' WHERE task = 'shop'"); err != nil {
		t.Fatal(err)
	}
	applyMust(t, a, 400, txns...)
	applyWant(t, pool, q, want...)
	// Another task's checkpoint is its own.
	b := NewApplier(pool, "other", applyItemsPlan())
	if cp, err := b.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("other task's Checkpoint = %s, %v; want 0/0", cp, err)
	}
	// Tables outside the plan are skipped.
	applyMust(t, b, 500, applyTxn(500, Change{Op: Insert, Schema: "public", Table: "nothere", Columns: c, New: applyVals("1", "x", "y")}))
}

func TestApplyUnchangedToast(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	big := strings.Repeat("toast", 10000)
	applyMust(t, a, 10, applyTxn(10, applyIns("items", c, "1", "one", big), applyIns("items", c, "2", "two", big)))
	// Across batches: the target keeps its value. Within a batch: the value
	// of the key's earlier change.
	applyMust(t, a, 30,
		applyTxn(20, applyUpd("items", c, nil, "1", "uno", applyKeep), applyIns("items", c, "3", "three", "fresh")),
		applyTxn(30, applyUpd("items", c, nil, "3", "tres", applyKeep), applyUpd("items", c, nil, "1", "UNO", applyKeep)),
	)
	applyWant(t, pool, "SELECT id, name, md5(note) FROM items ORDER BY id",
		"1|UNO|"+applyMD5(t, pool, big), "2|two|"+applyMD5(t, pool, big), "3|tres|"+applyMD5(t, pool, "fresh"))
}

func applyMD5(t *testing.T, pool *pgxpool.Pool, s string) string {
	t.Helper()
	var out string
	if err := pool.QueryRow(t.Context(), "SELECT md5($1)", s).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyTargetDiverged checks that changes still land when the target
// does not hold what the source held: rows deleted or added there by hand.
// Apply relies on the target matching the source for its fast statements,
// and falls back to statements that take the target as it is.
func TestApplyTargetDiverged(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	big := strings.Repeat("toast", 10000)
	applyMust(t, a, 10, applyTxn(10, applyIns("items", c, "1", "one", big), applyIns("items", c, "2", "two", "x"),
		applyIns("items", c, "3", "three", "x")))
	// Behind the task's back: 2 goes, 9 comes.
	if _, err := pool.Exec(t.Context(), `DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (9, 'stray', 'x')`); err != nil {
		t.Fatal(err)
	}
	applyMust(t, a, 20, applyTxn(20,
		applyUpd("items", c, nil, "1", "uno", applyKeep), // found: its kept value stays
		applyUpd("items", c, nil, "2", "dos", "y"),       // missing: written whole
		applyDel("items", c, applyVals("3", applyNull, applyNull), false)))
	applyMust(t, a, 25, applyTxn(25, applyIns("items", c, "9", "nine", "z"))) // present: overwritten
	applyWant(t, pool, "SELECT id, name, md5(note) FROM items ORDER BY id",
		"1|uno|"+applyMD5(t, pool, big), "2|dos|"+applyMD5(t, pool, "y"), "9|nine|"+applyMD5(t, pool, "z"))
	// A delete of a row the target lost is nothing to do.
	if _, err := pool.Exec(t.Context(), `DELETE FROM items WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	applyMust(t, a, 30, applyTxn(30, applyDel("items", c, applyVals("2", applyNull, applyNull), false),
		applyIns("items", c, "4", "four", "w")))
	applyWant(t, pool, "SELECT id, name FROM items ORDER BY id", "1|uno", "4|four", "9|nine")
}

func TestApplyKeyChange(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	applyMust(t, a, 10, applyTxn(10, applyIns("items", c, "1", "one", "kept"), applyIns("items", c, "5", "five", "x")))
	applyMust(t, a, 30,
		// 1 → 10 keeping note from the target; 5 → 6 → 7 within the batch.
		applyTxn(20, applyUpd("items", c, applyVals("1", applyNull, applyNull), "10", "ten", applyKeep),
			applyUpd("items", c, applyVals("5", applyNull, applyNull), "6", "six", "y")),
		applyTxn(30, applyUpd("items", c, applyVals("6", applyNull, applyNull), "7", "seven", applyKeep)),
	)
	applyWant(t, pool, "SELECT id, name, note FROM items ORDER BY id", "7|seven|y", "10|ten|kept")
}

func TestApplyKeylessDuplicates(t *testing.T) {
	pool := applyTarget(t, `CREATE TABLE public.log (a int4, b text);`)
	p := &plan.Plan{Tables: []plan.Table{applyPlanTable("public", "log", nil, applyPlanCol("a", "integer"), applyPlanCol("b", "text"))}}
	a := NewApplier(pool, "shop", p)
	c := []Column{{Name: "a", TypeOID: 23, TypeMod: -1, Key: true}, {Name: "b", TypeOID: 25, TypeMod: -1, Key: true}}
	row := applyVals("1", "same")
	applyMust(t, a, 10, applyTxn(10, applyIns("log", c, "1", "same"), applyIns("log", c, "1", "same"), applyIns("log", c, "2", applyNull)))
	applyMust(t, a, 20, applyTxn(20, applyDel("log", c, row, true)))
	applyWant(t, pool, "SELECT a, b FROM log ORDER BY a", "1|same", "2|∅")
	// Insert two again, update one of them, delete the NULL row.
	applyMust(t, a, 30, applyTxn(30,
		applyIns("log", c, "1", "same"),
		Change{Op: Update, Schema: "public", Table: "log", Columns: c, Old: row, New: applyVals("1", "changed")},
		applyDel("log", c, applyVals("2", applyNull), true),
		applyIns("log", c, "3", "after"),
	))
	applyWant(t, pool, "SELECT a, b FROM log ORDER BY a, b", "1|changed", "1|same", "3|after")
}

func TestApplyTruncateOrder(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	applyMust(t, a, 10, applyTxn(10, applyIns("items", c, "9", "old", "x")))
	applyMust(t, a, 30,
		applyTxn(20, applyIns("items", c, "1", "one", "x"), Change{Op: Truncate, Schema: "public", Table: "items"}),
		applyTxn(30, applyIns("items", c, "2", "two", "y")),
	)
	applyWant(t, pool, "SELECT id, name, note FROM items ORDER BY id", "2|two|y")
}

func TestApplyAddedColumn(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	c2 := append(slices.Clone(c), Column{Name: "qty", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4}, Column{Name: "seen", TypeOID: 1184, TypeMod: -1})
	applyMust(t, a, 20,
		applyTxn(10, applyIns("items", c, "1", "one", "x")),
		applyTxn(20, applyIns("items", c2, "2", "two", "y", "3.50", "2024-01-02 03:04:05+00"), applyUpd("items", c2, nil, "1", "one", "x", "1", applyNull)),
	)
	applyWant(t, pool, "SELECT id, qty, seen AT TIME ZONE 'UTC' FROM items ORDER BY id", "1|1.00|∅", "2|3.50|2024-01-02 03:04:05")
	applyWant(t, pool, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname IN ('qty', 'seen') ORDER BY attnum",
		"numeric(12,2)", "timestamp with time zone")
	// The next batch finds the column already there.
	applyMust(t, a, 30, applyTxn(30, applyIns("items", c2, "3", "three", "z", "7", applyNull)))
	applyWant(t, pool, "SELECT id, qty FROM items ORDER BY id", "1|1.00", "2|3.50", "3|7.00")
}

func TestApplyRenameTransform(t *testing.T) {
	pool := applyTarget(t, `CREATE SCHEMA crm; CREATE TABLE crm.customers (uid int8 PRIMARY KEY, email_hash text, total bigint);`)
	tbl := applyPlanTable("public", "users", []string{"id"},
		plan.Column{Source: "id", Target: "uid", SourceType: "integer", TargetType: "bigint", Transform: plan.TransformCast, CastType: "bigint", Expr: `CAST("id" AS bigint)`},
		plan.Column{Source: "email", Target: "email_hash", SourceType: "text", TargetType: "text", Transform: plan.TransformSHA256,
			Expr: `encode(sha256(convert_to("email"::text, 'UTF8')), 'hex')`},
		plan.Column{Source: "amount", Target: "total", SourceType: "numeric(12,2)", TargetType: "bigint", Transform: plan.TransformCast, CastType: "bigint", Expr: `CAST("amount" AS bigint)`},
	)
	tbl.Target = plan.Name{Schema: "crm", Name: "customers"}
	a := NewApplier(pool, "shop", &plan.Plan{Tables: []plan.Table{tbl}})
	c := []Column{{Name: "id", TypeOID: 23, TypeMod: -1, Key: true}, {Name: "email", TypeOID: 25, TypeMod: -1}, {Name: "amount", TypeOID: 1700, TypeMod: -1}}
	applyMust(t, a, 20,
		applyTxn(10, applyIns("users", c, "1", "a@x.io", "10.40"), applyIns("users", c, "2", "b@x.io", "2.6"), applyIns("users", c, "3", "c@x.io", "1")),
		applyTxn(20, applyUpd("users", c, nil, "2", "bb@x.io", "99.99"), applyDel("users", c, applyVals("3", applyNull, applyNull), false)),
	)
	applyWant(t, pool, "SELECT uid, email_hash, total FROM crm.customers ORDER BY uid",
		"1|"+applySHA(t, pool, "a@x.io")+"|10", "2|"+applySHA(t, pool, "bb@x.io")+"|100")
}

func applySHA(t *testing.T, pool *pgxpool.Pool, s string) string {
	t.Helper()
	var out string
	if err := pool.QueryRow(t.Context(), "SELECT encode(sha256(convert_to($1::text, 'UTF8')), 'hex')", s).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestApplyNotNullViolation(t *testing.T) {
	pool := applyTarget(t, `CREATE TABLE public.items (id int4 PRIMARY KEY, name text NOT NULL, note text);`)
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	applyMust(t, a, 10, applyTxn(10, applyIns("items", c, "1", "one", "x")))
	_, err := a.Apply(t.Context(), []Txn{
		applyTxn(20, applyIns("items", c, "2", "two", "secret-note")),
		applyTxn(0x1_0000_0030, applyIns("items", c, "7", applyNull, "secret-note")),
		applyTxn(0x1_0000_0040, applyIns("items", c, "8", "eight", "secret-note")),
	})
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply error = %v, want an *ApplyError", err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, want := range []string{"public.items", "id=7", "1/30", "not-null"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "secret") {
		t.Errorf("error %q shows a column value", msg)
	}
	if cp, err := a.Checkpoint(t.Context()); err != nil || cp != 10 {
		t.Fatalf("Checkpoint = %s, %v; want 0/A", cp, err)
	}
	applyWant(t, pool, "SELECT id FROM items ORDER BY id", "1")

	// A bad value names the key but not the value.
	_, err = a.Apply(t.Context(), []Txn{applyTxn(50, applyIns("items", c, "9", "nine", "x"), applyUpd("items", c, nil, "1", "one", "y")),
		applyTxn(60, Change{Op: Insert, Schema: "public", Table: "items", Columns: c[:1], New: applyVals("notanumber")})})
	if err == nil || !strings.Contains(err.Error(), "id=notanumber") || !strings.Contains(err.Error(), "0/3C") {
		t.Fatalf("Apply error = %v, want one naming id=notanumber at 0/3C", err)
	}
}

// TestApplyThroughput applies a pgbench-like workload: 20k transactions of
// an account, teller and branch update and a history insert (keyless).
func TestApplyThroughput(t *testing.T) {
	const accounts, txCount = 100000, 20000
	pool := applyTarget(t, fmt.Sprintf(`
CREATE TABLE public.accounts (aid int4 PRIMARY KEY, bid int4, abalance int4, filler char(84));
CREATE TABLE public.tellers (tid int4 PRIMARY KEY, bid int4, tbalance int4, filler char(84));
CREATE TABLE public.branches (bid int4 PRIMARY KEY, bbalance int4, filler char(88));
CREATE TABLE public.history (tid int4, bid int4, aid int4, delta int4, mtime timestamp, filler char(22));
INSERT INTO accounts SELECT g, 1, 0, '' FROM generate_series(1, %d) g;
INSERT INTO tellers SELECT g, 1, 0, '' FROM generate_series(1, 10) g;
INSERT INTO branches VALUES (1, 0, '');`, accounts))
	p := &plan.Plan{Tables: []plan.Table{
		applyPlanTable("public", "branches", []string{"bid"}, applyPlanCol("bid", "integer"), applyPlanCol("bbalance", "integer"), applyPlanCol("filler", "character(88)")),
		applyPlanTable("public", "tellers", []string{"tid"}, applyPlanCol("tid", "integer"), applyPlanCol("bid", "integer"), applyPlanCol("tbalance", "integer"), applyPlanCol("filler", "character(84)")),
		applyPlanTable("public", "accounts", []string{"aid"}, applyPlanCol("aid", "integer"), applyPlanCol("bid", "integer"), applyPlanCol("abalance", "integer"), applyPlanCol("filler", "character(84)")),
		applyPlanTable("public", "history", nil, applyPlanCol("tid", "integer"), applyPlanCol("bid", "integer"), applyPlanCol("aid", "integer"),
			applyPlanCol("delta", "integer"), applyPlanCol("mtime", "timestamp without time zone"), applyPlanCol("filler", "character(22)")),
	}}
	i4 := func(n string) Column { return Column{Name: n, TypeOID: 23, TypeMod: -1} }
	acc := []Column{{Name: "aid", TypeOID: 23, TypeMod: -1, Key: true}, i4("bid"), i4("abalance"), {Name: "filler", TypeOID: 1042, TypeMod: 88}}
	tel := []Column{{Name: "tid", TypeOID: 23, TypeMod: -1, Key: true}, i4("bid"), i4("tbalance"), {Name: "filler", TypeOID: 1042, TypeMod: 88}}
	bra := []Column{{Name: "bid", TypeOID: 23, TypeMod: -1, Key: true}, i4("bbalance"), {Name: "filler", TypeOID: 1042, TypeMod: 92}}
	his := []Column{i4("tid"), i4("bid"), i4("aid"), i4("delta"), {Name: "mtime", TypeOID: 1114, TypeMod: -1}, {Name: "filler", TypeOID: 1042, TypeMod: 26}}

	rng := rand.New(rand.NewPCG(1, 2))
	abal := make([]int, accounts+1)
	tbal := make([]int, 11)
	bbal := 0
	itoa := func(n int) string { return fmt.Sprint(n) }
	txns := make([]Txn, txCount)
	for i := range txns {
		aid, tid, delta := 1+rng.IntN(accounts), 1+rng.IntN(10), rng.IntN(10001)-5000
		abal[aid] += delta
		tbal[tid] += delta
		bbal += delta
		txns[i] = applyTxn(pgoutput.LSN(1000+i),
			applyUpd("accounts", acc, nil, itoa(aid), "1", itoa(abal[aid]), ""),
			applyUpd("tellers", tel, nil, itoa(tid), "1", itoa(tbal[tid]), applyNull),
			applyUpd("branches", bra, nil, "1", itoa(bbal), applyNull),
			applyIns("history", his, itoa(tid), "1", itoa(aid), itoa(delta), "2024-01-01 00:00:00", applyNull),
		)
	}
	a := NewApplier(pool, "bench", p)
	start := time.Now()
	applyMust(t, a, txns[len(txns)-1].CommitLSN, txns...)
	elapsed := time.Since(start)
	changes := 4 * txCount
	t.Logf("applied %d transactions (%d changes) in %s: %.0f changes/s", txCount, changes, elapsed, float64(changes)/elapsed.Seconds())

	var sum, hist int64
	if err := pool.QueryRow(context.Background(), "SELECT (SELECT sum(abalance) FROM accounts), (SELECT count(*) FROM history)").Scan(&sum, &hist); err != nil {
		t.Fatal(err)
	}
	if sum != int64(bbal) || hist != txCount {
		t.Fatalf("sum(abalance) = %d, history rows = %d; want %d, %d", sum, hist, bbal, txCount)
	}
	applyWant(t, pool, "SELECT bbalance FROM branches", itoa(bbal))
}

// TestApplyForeignKeys deletes a child and its parent in one batch, the
// parent's table coming first in the plan: tables are merged one at a time,
// so the target writes as a replica, as a subscription does.
func TestApplyForeignKeys(t *testing.T) {
	pool := applyTarget(t, `CREATE TABLE public.parent (id int4 PRIMARY KEY);
CREATE TABLE public.child (id int4 PRIMARY KEY, parent_id int4 NOT NULL REFERENCES parent);`)
	p := &plan.Plan{Tables: []plan.Table{
		applyPlanTable("public", "parent", []string{"id"}, applyPlanCol("id", "integer")),
		applyPlanTable("public", "child", []string{"id"}, applyPlanCol("id", "integer"), applyPlanCol("parent_id", "integer")),
	}}
	a := NewApplier(pool, "shop", p)
	pc := []Column{{Name: "id", TypeOID: 23, TypeMod: -1, Key: true}}
	cc := []Column{{Name: "id", TypeOID: 23, TypeMod: -1, Key: true}, {Name: "parent_id", TypeOID: 23, TypeMod: -1}}
	applyMust(t, a, 10, applyTxn(10, applyIns("parent", pc, "1"), applyIns("parent", pc, "2"), applyIns("child", cc, "1", "1")))
	applyMust(t, a, 20, applyTxn(20, applyDel("child", cc, applyVals("1", applyNull), false), applyDel("parent", pc, applyVals("1"), false)))
	applyWant(t, pool, "SELECT id FROM parent", "2")
	applyWant(t, pool, "SELECT count(*) FROM child", "0")
}

// TestApplyUnprivileged applies as a role that may not set
// session_replication_role: the batch still applies.
func TestApplyUnprivileged(t *testing.T) {
	_, pg := applyTargetPG(t, "")
	ctx := t.Context()
	if err := pg.CreateRole(ctx, "app", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "tgt", "GRANT CREATE ON DATABASE tgt TO app; GRANT CREATE ON SCHEMA public TO app; SET ROLE app; "+applyItemsDDL); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pg.DSN("app", "secret", "tgt"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	a := NewApplier(pool, "shop", applyItemsPlan())
	c := applyItemsCols
	applyMust(t, a, 20, applyTxn(10, applyIns("items", c, "1", "one", "x"), applyIns("items", c, "2", "two", "y")),
		applyTxn(20, applyDel("items", c, applyVals("1", applyNull, applyNull), false)))
	applyWant(t, pool, "SELECT id, name FROM items", "2|two")
}

// applyPartOf returns the part of items row id among parts.
func applyPartOf(id string, parts int) int {
	h, _ := keyHash(applyVals(id), []int{0})
	return int(h % uint64(parts))
}

// TestApplyParallel applies batches of keyed changes in two parts at once
// and checks that the result and the checkpoint are the serial ones.
func TestApplyParallel(t *testing.T) {
	pool := applyTarget(t, applyItemsDDL)
	a := NewApplier(pool, "shop", applyItemsPlan())
	a.Parts = 2
	c := applyItemsCols
	var first, second []Change
	for i := range 200 {
		first = append(first, applyIns("items", c, fmt.Sprint(i), "v1", "n"))
	}
	for i := range 200 {
		switch id := fmt.Sprint(i); i % 3 {
		case 0:
			second = append(second, applyUpd("items", c, nil, id, "v2", applyKeep))
		case 1:
			second = append(second, applyDel("items", c, applyVals(id, applyNull, applyNull), false))
		default:
			second = append(second, applyIns("items", c, fmt.Sprint(1000+i), "new", "n"), applyUpd("items", c, nil, id, "v3", "m"))
		}
	}
	// The first batch of an Applier is whole; the next ones in parts.
	applyMust(t, a, 11, applyTxn(10, first[:100]...), applyTxn(11, first[100:]...))
	applyMust(t, a, 30, applyTxn(20, second[:150]...), applyTxn(30, second[150:]...))
	if got := a.parallelBatches.Load(); got != 1 {
		t.Fatalf("%d batches applied in parts, want 1", got)
	}
	// Replayed: skipped by every part.
	applyMust(t, a, 30, applyTxn(30, applyIns("items", c, "5000", "late", "n")))
	batches := a.parallelBatches.Load()
	var want []string
	for i := range 200 {
		switch i % 3 {
		case 0:
			want = append(want, fmt.Sprintf("%d|v2|n", i))
		case 2:
			want = append(want, fmt.Sprintf("%d|v3|m", i))
		}
	}
	for i := range 200 {
		if i%3 == 2 {
			want = append(want, fmt.Sprintf("%d|new|n", 1000+i))
		}
	}
	applyWant(t, pool, "SELECT id, name, note FROM items ORDER BY id", want...)
	applyWant(t, pool, "SELECT lsn::text FROM _migration.cdc WHERE task = 'shop'", "0/1E")
	applyWant(t, pool, "SELECT count(*) FROM _migration.cdc_part", "0")

	// A prepared Applier applies its first batch in parts too.
	pa := NewApplier(pool, "shop", applyItemsPlan())
	pa.Parts = 2
	if err := pa.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	applyMust(t, pa, 35, applyTxn(35, applyUpd("items", c, nil, "0", "v2", "n"), applyUpd("items", c, nil, "3", "v2", "n")))
	if got := pa.parallelBatches.Load(); got != 1 {
		t.Fatalf("%d batches of a prepared Applier applied in parts, want 1", got)
	}
	// A batch with a truncate is applied whole.
	applyMust(t, a, 40, applyTxn(40, applyIns("items", c, "7000", "x", "y"), Change{Op: Truncate, Schema: "public", Table: "items"},
		applyIns("items", c, "7001", "x", "y")))
	if got := a.parallelBatches.Load(); got != batches {
		t.Fatalf("the batch with a truncate was applied in parts")
	}
	applyWant(t, pool, "SELECT id FROM items", "7001")
}

// TestApplyParallelCrash cuts a batch applied in parts short after one
// part committed, and checks that the next apply replays exactly what the
// other part did not apply.
func TestApplyParallelCrash(t *testing.T) {
	pool := applyTarget(t, `CREATE TABLE public.items (id int4 PRIMARY KEY, name text NOT NULL, note text);`)
	a := NewApplier(pool, "shop", applyItemsPlan())
	a.Parts = 2
	c := applyItemsCols
	var ids [2][]string
	for i := 0; len(ids[0]) < 3 || len(ids[1]) < 3; i++ {
		id := fmt.Sprint(i)
		if p := applyPartOf(id, 2); len(ids[p]) < 3 {
			ids[p] = append(ids[p], id)
		}
	}
	var seed []Change
	for _, id := range append(ids[0], ids[1]...) {
		seed = append(seed, applyIns("items", c, id, "v1", "n"))
	}
	applyMust(t, a, 10, applyTxn(10, seed...))
	// Part 0 updates its rows; part 1 too, but its last update is refused.
	batch := []Txn{
		applyTxn(20, applyUpd("items", c, nil, ids[0][0], "v2", "n"), applyUpd("items", c, nil, ids[1][0], "v2", "n")),
		applyTxn(30, applyUpd("items", c, nil, ids[0][1], "v2", "n"), applyUpd("items", c, nil, ids[1][1], applyNull, "n")),
	}
	if _, err := a.Apply(t.Context(), batch); err == nil || !strings.Contains(err.Error(), "id="+ids[1][1]) {
		t.Fatalf("Apply = %v, want the not-null violation of id=%s", err, ids[1][1])
	}
	applyWant(t, pool, "SELECT lsn::text FROM _migration.cdc WHERE task = 'shop'", "0/A")
	applyWant(t, pool, "SELECT part, parts, lsn::text FROM _migration.cdc_part", "0|2|0/1E")
	applyWant(t, pool, "SELECT id, name FROM items WHERE name = 'v2' ORDER BY id", ids[0][0]+"|v2", ids[0][1]+"|v2")

	// Part 0's rows change behind the task's back: a replay of what part 0
	// applied would undo that, so it shows whether the replay skips it.
	if _, err := pool.Exec(t.Context(), `ALTER TABLE items ALTER name DROP NOT NULL; UPDATE items SET note = 'mark' WHERE name = 'v2'`); err != nil {
		t.Fatal(err)
	}
	b := NewApplier(pool, "shop", applyItemsPlan())
	b.Parts = 2
	// Prepared, it knows that a part is ahead: the replay is applied whole.
	if err := b.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	applyMust(t, b, 40, append(batch, applyTxn(40, applyUpd("items", c, nil, ids[0][2], "v4", "n")))...)
	if got := b.parallelBatches.Load(); got != 0 {
		t.Fatalf("the replay was applied in parts")
	}
	applyWant(t, pool, "SELECT id, coalesce(name, '∅'), note FROM items WHERE id IN ("+strings.Join(append(ids[0], ids[1]...), ",")+") ORDER BY id",
		func() []string {
			want := map[string]string{
				ids[0][0]: "v2|mark", ids[0][1]: "v2|mark", ids[0][2]: "v4|n",
				ids[1][0]: "v2|n", ids[1][1]: "∅|n", ids[1][2]: "v1|n",
			}
			var all []int
			for id := range want {
				n, _ := strconv.Atoi(id)
				all = append(all, n)
			}
			slices.Sort(all)
			var out []string
			for _, id := range all {
				out = append(out, fmt.Sprintf("%d|%s", id, want[fmt.Sprint(id)]))
			}
			return out
		}()...)
	applyWant(t, pool, "SELECT count(*) FROM _migration.cdc_part", "0")
	applyWant(t, pool, "SELECT lsn::text FROM _migration.cdc WHERE task = 'shop'", "0/28")
}
