package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// cdcSchemaSQL has what change data capture must carry: a keyed table with
// TOASTed values, a keyless one with REPLICA IDENTITY FULL, a partitioned
// table, and one the writer truncates.
const cdcSchemaSQL = `
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, balance bigint NOT NULL, doc text);
INSERT INTO app.accounts
  SELECT g, g, CASE WHEN g % 500 = 0 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i) END
  FROM generate_series(1, 100000) g;
CREATE TABLE app.events (at timestamptz NOT NULL, kind text, payload jsonb);
ALTER TABLE app.events REPLICA IDENTITY FULL;
INSERT INTO app.events SELECT '2024-01-01'::timestamptz + g * interval '1 minute', 'seed', jsonb_build_object('n', g % 7) FROM generate_series(1, 3000) g;
CREATE TABLE app.parted (id int NOT NULL, region text NOT NULL, amount numeric(12,2), PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE app.parted_eu PARTITION OF app.parted FOR VALUES IN ('eu');
CREATE TABLE app.parted_us PARTITION OF app.parted FOR VALUES IN ('us');
INSERT INTO app.parted SELECT g, (ARRAY['eu','us'])[1 + g % 2], g / 4.0 FROM generate_series(1, 4000) g;
CREATE TABLE app.scratch (id int PRIMARY KEY, v text);
INSERT INTO app.scratch SELECT g, 'v' || g FROM generate_series(1, 500) g;
ANALYZE;
`

var cdcTables = []string{"app.accounts", "app.events", "app.parted", "app.scratch"}

// cdcEnv is a CDC task's workspace: a source database on the CDC source
// cluster, owned by a role with REPLICATION, and a target database on the
// shared cluster, driven by the real provider binary through real terraform.
type cdcEnv struct {
	src, tgt     *testenv.Postgres
	srcDB, tgtDB string
	dir          string
	env          []string
}

func newCDCEnv(t *testing.T, name, schemaSQL string) *cdcEnv {
	t.Helper()
	e := &cdcEnv{src: sharedCDCSource(t), tgt: sharedPostgres(t), srcDB: name + "_src", tgtDB: name + "_tgt", dir: t.TempDir()}
	ctx := context.Background()
	srcRole := e.srcDB + "_user"
	if err := e.src.CreateRole(ctx, srcRole, "src-pw", "REPLICATION"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.CreateDatabase(ctx, e.srcDB); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, e.srcDB, fmt.Sprintf(`ALTER DATABASE %[1]q OWNER TO %[2]q; SET ROLE %[2]q;`, e.srcDB, srcRole)+schemaSQL); err != nil {
		t.Fatal(err)
	}
	newDatabase(t, e.tgt, e.tgtDB, "tgt-pw")
	e.env = []string{"TF_CLI_CONFIG_FILE=" + buildProvider(t), "TF_IN_AUTOMATION=1", "TF_VAR_src_pw=src-pw", "TF_VAR_tgt_pw=tgt-pw", "PGPASSWORD="}
	return e
}

// config writes main.tf: the two endpoints, passwords from ephemeral
// variables through the provider (every walk can log in), and task.
func (e *cdcEnv) config(t *testing.T, task string) {
	t.Helper()
	endpoint := func(name string, pg *testenv.Postgres, db, pw string) string {
		return fmt.Sprintf(`resource "migration_endpoint" %q {
  postgres = { host = "127.0.0.1", port = %d, database = %q, username = "%s_user", password_wo = var.%s, password_wo_version = 1, sslmode = "disable" }
}
`, name, pg.Port, db, db, pw)
	}
	tf := fmt.Sprintf(`terraform {
  required_providers {
    migration = { source = "migrationworks/migration" }
  }
}
variable "src_pw" {
  type      = string
  ephemeral = true
}
variable "tgt_pw" {
  type      = string
  ephemeral = true
}
provider "migration" {
  postgres_passwords = {
    "%[1]s_user@127.0.0.1:%[2]d/%[1]s" = var.src_pw
    "%[3]s_user@127.0.0.1:%[4]d/%[3]s" = var.tgt_pw
  }
}
`, e.srcDB, e.src.Port, e.tgtDB, e.tgt.Port) + endpoint("src", e.src, e.srcDB, "src_pw") + endpoint("tgt", e.tgt, e.tgtDB, "tgt_pw") + task
	if err := os.WriteFile(filepath.Join(e.dir, "main.tf"), []byte(tf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// terraform runs a command and fails the test unless it exits with want.
func (e *cdcEnv) terraform(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, code := terraformRun(t, e.dir, e.env, append(args, "-no-color")...)
	if code != want {
		t.Fatalf("terraform %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// equal fails unless every table has the same rows on both sides.
func (e *cdcEnv) equal(t *testing.T, tables ...string) {
	t.Helper()
	for _, tbl := range tables {
		if a, b := digest(t, e.src, e.srcDB, tbl), digest(t, e.tgt, e.tgtDB, tbl); a != b {
			t.Fatalf("%s differs: source %s, target %s", tbl, a, b)
		}
	}
}

func (e *cdcEnv) exec(t *testing.T, sql string) {
	t.Helper()
	if err := e.src.Exec(context.Background(), e.srcDB, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// slotIdle waits until the task's slot has no reader: a killed provider's
// walsender takes a moment to notice.
func (e *cdcEnv) slotIdle(t *testing.T, task string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for queryString(t, e.src, e.srcDB, `SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 'migration_`+task+`' AND active`) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the slot is still in use 30 s after its reader was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writer applies a mixed workload to the source in small transactions
// until stop is closed: inserts, updates leaving TOASTed values unchanged,
// deletes, keyless rows and partition moves.
func (e *cdcEnv) writer(t *testing.T, stop <-chan struct{}, seed int) (wait func() int) {
	var wg sync.WaitGroup
	var n atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(context.Background(), e.src.SuperuserDSN(e.srcDB))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for i := seed; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + (i*7919)%100000
			err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
				b := &pgx.Batch{}
				b.Queue(`UPDATE app.accounts SET balance = balance + 1 WHERE id = $1 OR id = $1 + 500 - ($1 % 500)`, id)
				b.Queue(`INSERT INTO app.accounts VALUES ($1, $2, NULL) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance`, 200000+i, i)
				b.Queue(`DELETE FROM app.accounts WHERE id = $1`, 1+(i*104729)%100000)
				b.Queue(`INSERT INTO app.events VALUES (now(), 'w', jsonb_build_object('i', $1::int))`, i)
				b.Queue(`DELETE FROM app.events WHERE ctid = (SELECT ctid FROM app.events WHERE kind = 'seed' LIMIT 1)`)
				b.Queue(`UPDATE app.parted SET region = CASE region WHEN 'eu' THEN 'us' ELSE 'eu' END, amount = amount + 1 WHERE id = $1`, 1+i%4000)
				b.Queue(`INSERT INTO app.scratch VALUES ($1, 'w') ON CONFLICT DO NOTHING`, 1000+i)
				return tx.SendBatch(context.Background(), b).Close()
			})
			if err != nil {
				// Only a partition move onto an existing key may fail; keep going.
				if !strings.Contains(err.Error(), "duplicate key") {
					t.Error(err)
					return
				}
			}
			n.Add(1)
		}
	}()
	return func() int { wg.Wait(); return int(n.Load()) }
}

func cdcTask(name, waitFor string) string {
	return fmt.Sprintf(`
resource "migration_task" "t" {
  name               = %q
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  mode               = "full_load_and_cdc"
  wait_for           = %q
  tables             = [{ source = "app.*" }]
  parallelism        = 2
}
`, name, waitFor)
}

// TestAccTaskCDC_followsTheSource: a full load and CDC under concurrent
// writes (inserts, updates leaving TOASTed values unchanged, deletes,
// keyless rows, partition moves, a truncate and an added column) ends with
// every table equal; the plan shows the catch-up (exit 2), then nothing
// (exit 0); a kill -9 during a catch-up loses and duplicates nothing;
// destroy leaves no slot or publication.
func TestAccTaskCDC_followsTheSource(t *testing.T) {
	e := newCDCEnv(t, "acc_cdc", cdcSchemaSQL)
	e.config(t, cdcTask("follow", "cdc_synced"))

	// The first apply loads and catches up while the writer runs.
	stop := make(chan struct{})
	wait := e.writer(t, stop, 0)
	time.Sleep(200 * time.Millisecond)
	out := e.terraform(t, 0, "apply", "-auto-approve")
	close(stop)
	if n := wait(); n == 0 {
		t.Fatal("the writer wrote nothing during the first apply")
	}
	if !strings.Contains(out, "Change data capture:") {
		t.Fatalf("the first apply did not report its catch-up:\n%s", out)
	}

	// More writes after it: a truncate and an added column among them.
	e.exec(t, `TRUNCATE app.scratch; INSERT INTO app.scratch VALUES (1, 'after truncate')`)
	e.exec(t, `ALTER TABLE app.accounts ADD COLUMN note text`)
	e.exec(t, `UPDATE app.accounts SET note = 'noted ' || id WHERE id % 1000 = 0`)
	e.exec(t, `INSERT INTO app.accounts (id, balance, note) VALUES (900001, 1, 'new row with the new column')`)
	stop = make(chan struct{})
	wait = e.writer(t, stop, 100000)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wait()

	out = e.terraform(t, 2, "plan", "-detailed-exitcode")
	for _, want := range []string{"CATCH-UP", "changes in", "pending_changes", "will be updated in-place"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the plan does not announce the catch-up (%q missing):\n%s", want, out)
		}
	}
	e.terraform(t, 0, "apply", "-auto-approve")
	e.equal(t, cdcTables...)
	e.terraform(t, 0, "plan", "-detailed-exitcode")
	state := e.terraform(t, 0, "state", "show", "migration_task.t")
	for _, want := range []string{`pending_changes    = 0`, `slot_health        = "reserved"`, `lag_seconds        = 0`} {
		if !strings.Contains(state, want) {
			t.Fatalf("state after catch-up lacks %q:\n%s", want, state)
		}
	}

	// kill -9 during a catch-up of several batches, then a clean re-apply.
	for i := range 4 {
		e.exec(t, fmt.Sprintf(`UPDATE app.accounts SET balance = balance + %d`, i+1))
	}
	e.killDuringCatchUp(t, "follow")
	e.slotIdle(t, "follow")
	e.terraform(t, 0, "apply", "-auto-approve")
	e.equal(t, cdcTables...)
	e.terraform(t, 0, "plan", "-detailed-exitcode")

	// Destroy drops this task's slot and publication, and nothing else.
	e.exec(t, `SELECT pg_create_logical_replication_slot('bystander', 'pgoutput'); CREATE PUBLICATION bystander FOR TABLE app.scratch`)
	e.terraform(t, 0, "destroy", "-auto-approve")
	if got := queryString(t, e.src, e.srcDB, `SELECT (SELECT string_agg(slot_name, ',') FROM pg_replication_slots WHERE database = current_database()) || '/' || (SELECT string_agg(pubname, ',') FROM pg_publication)`); got != "bystander/bystander" {
		t.Fatalf("after destroy, slots/publications on the source: %s; want bystander/bystander", got)
	}
	e.exec(t, `SELECT pg_drop_replication_slot('bystander'); DROP PUBLICATION bystander`)
	// keep_target: the data stays.
	if got := queryString(t, e.tgt, e.tgtDB, `SELECT count(*)::text FROM app.accounts`); got == "0" {
		t.Fatal("destroy with keep_target emptied the target")
	}
}

// killDuringCatchUp runs apply and kills the provider once a batch of
// changes was applied and confirmed.
func (e *cdcEnv) killDuringCatchUp(t *testing.T, task string) {
	t.Helper()
	before := queryString(t, e.tgt, e.tgtDB, `SELECT lsn::text FROM _migration.cdc WHERE task = '`+task+`'`)
	if !applyAndKill(t, e.dir, e.env, "changes applied") {
		t.Fatal("the apply finished before a batch of changes was logged; nothing was killed")
	}
	after := queryString(t, e.tgt, e.tgtDB, `SELECT lsn::text FROM _migration.cdc WHERE task = '`+task+`'`)
	if after == before {
		t.Fatalf("no batch was committed before the kill (checkpoint still %s)", before)
	}
}

// TestAccTaskCDC_waitForFullLoadThenCatchUp: with wait_for = "full_load"
// the first apply only loads; the next plan announces the changes made
// meanwhile; cdc.enabled = false pauses without losing them.
func TestAccTaskCDC_waitForFullLoadThenCatchUp(t *testing.T) {
	e := newCDCEnv(t, "acc_cdc_pause", cdcSchemaSQL)
	e.config(t, cdcTask("paused", "full_load"))
	e.terraform(t, 0, "apply", "-auto-approve")
	e.exec(t, `UPDATE app.accounts SET balance = -balance WHERE id <= 300; DELETE FROM app.events WHERE kind = 'seed' AND (payload->>'n')::int = 3`)

	out := e.terraform(t, 2, "plan", "-detailed-exitcode")
	if !regexp.MustCompile(`CATCH-UP: \d+ changes in \d+ transactions are pending`).MatchString(out) {
		t.Fatalf("the plan does not count the pending changes:\n%s", out)
	}

	// Paused: the apply records the pause, the changes stay in the slot.
	e.config(t, strings.Replace(cdcTask("paused", "full_load"), `parallelism        = 2`, "parallelism        = 2\n  cdc                = { enabled = false }", 1))
	e.terraform(t, 0, "apply", "-auto-approve")
	if got := queryString(t, e.tgt, e.tgtDB, `SELECT count(*)::text FROM app.accounts WHERE balance < 0`); got != "0" {
		t.Fatalf("a paused task applied %s changes", got)
	}
	out = e.terraform(t, 0, "plan", "-detailed-exitcode")
	if !strings.Contains(out, "PAUSED") {
		t.Fatalf("the plan of a paused task does not say so:\n%s", out)
	}
	// Destroying (or replacing) the task would drop the slot and the
	// changes it holds: the plan warns.
	out = e.terraform(t, 2, "plan", "-destroy", "-detailed-exitcode")
	if !regexp.MustCompile(`(?s)Replication Slot Holds Unapplied Changes.*Destroying task paused drops.*migration_paused.*still\s+holds\s+\d+\s+changes`).MatchString(out) {
		t.Fatalf("destroying a task whose slot holds changes does not warn:\n%s", out)
	}

	// Resumed: everything arrives.
	e.config(t, cdcTask("paused", "full_load"))
	e.terraform(t, 0, "apply", "-auto-approve")
	e.equal(t, cdcTables...)
	e.terraform(t, 0, "plan", "-detailed-exitcode")
	e.terraform(t, 0, "destroy", "-auto-approve")
	if got := queryString(t, e.src, e.srcDB, `SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 'migration_paused'`); got != "0" {
		t.Fatal("destroy left the slot")
	}
}

// TestAccTaskCDC_badInput: what stands in the way of capture fails the plan,
// naming the attribute and what to do, and nothing is written anywhere.
func TestAccTaskCDC_badInput(t *testing.T) {
	skipUnlessAcc(t)
	// A source that cannot do logical decoding and has no slot left.
	src, err := testenv.StartPostgres(context.Background(), testenv.PostgresOptions{ExtraConf: []string{"wal_level = replica", "max_replication_slots = 1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Stop() }()
	ctx := context.Background()
	if err := src.CreateRole(ctx, "plain", "src-pw"); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateDatabase(ctx, "legacy"); err != nil {
		t.Fatal(err)
	}
	if err := src.Exec(ctx, "legacy", `ALTER DATABASE legacy OWNER TO plain; SET ROLE plain;
CREATE SCHEMA app;
CREATE TABLE app.keyed (id int PRIMARY KEY, v text);
CREATE TABLE app.keyless (a int, b text);
INSERT INTO app.keyed VALUES (1, 'a'); INSERT INTO app.keyless VALUES (1, 'a');
RESET ROLE;
SELECT pg_create_physical_replication_slot('standby');`); err != nil {
		t.Fatal(err)
	}
	pg := sharedPostgres(t)
	tgt, _ := newDatabase(t, pg, "acc_cdc_bad_tgt", "tgt-pw")
	cfg := fmt.Sprintf(`
resource "migration_endpoint" "src" {
  postgres = { host = "127.0.0.1", port = %d, database = "legacy", username = "plain", password_wo = "src-pw", password_wo_version = 1, sslmode = "disable" }
}
resource "migration_endpoint" "tgt" {
  postgres = { host = "127.0.0.1", port = %d, database = %q, username = "%s_user", password_wo = "tgt-pw", password_wo_version = 1, sslmode = "disable" }
}
resource "migration_task" "t" {
  name               = "bad"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  mode               = "full_load_and_cdc"
  tables             = [{ source = "app.keyed" }, { source = "app.keyless" }]
}
`, src.Port, pg.Port, tgt, tgt)
	for _, c := range []struct{ name, want string }{
		{"wal_level", `(?s)Logical Decoding Not Enabled.*source_endpoint_id.*wal_level is "replica".*wal_level = logical`},
		{"replication privilege", `(?s)Missing REPLICATION Privilege.*source_endpoint_id.*ALTER ROLE plain WITH REPLICATION`},
		{"no free slot", `(?s)No Free Replication Slot.*source_endpoint_id.*max_replication_slots`},
		{"no replica identity", `(?s)Table Cannot Be Replicated.*tables\[1\]\.source.*app\.keyless has no primary key.*REPLICA IDENTITY FULL`},
	} {
		want := c.want
		t.Run(c.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   requireWriteOnly,
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{{Config: cfg, ExpectError: regexp.MustCompile(want)}},
			})
		})
	}
	t.Run("cdc_synced needs a CDC mode", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			TerraformVersionChecks:   requireWriteOnly,
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config:      strings.Replace(cfg, `mode               = "full_load_and_cdc"`, `wait_for           = "cdc_synced"`, 1),
				ExpectError: regexp.MustCompile(`(?s)wait_for.*needs a CDC mode`),
			}},
		})
	})
	if got := queryString(t, src, "legacy", `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical') + (SELECT count(*) FROM pg_publication)`); got != "0" {
		t.Fatalf("bad input created %s slots or publications on the source", got)
	}
	if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM pg_namespace WHERE nspname IN ('_migration', 'app')`); got != "0" {
		t.Fatalf("bad input wrote to the target: %s of the schemas _migration, app exist", got)
	}
}

// TestAccTaskCDC_cdcOnly: cdc_only copies no rows; it replays the changes
// committed after its slot was made into tables loaded by other means, and
// creates (empty, with keys) the ones the target lacks.
func TestAccTaskCDC_cdcOnly(t *testing.T) {
	e := newCDCEnv(t, "acc_cdc_only", `
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, name text NOT NULL, qty int);
INSERT INTO app.items SELECT g, 'item ' || g, g % 10 FROM generate_series(1, 2000) g;
CREATE TABLE app.fresh (id int PRIMARY KEY, v text);
`)
	// app.items was loaded on the target by other means (as pg_dump would).
	if err := e.tgt.Exec(context.Background(), e.tgtDB, fmt.Sprintf(`SET ROLE %q;
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, name text NOT NULL, qty int);
INSERT INTO app.items SELECT g, 'item ' || g, g %% 10 FROM generate_series(1, 2000) g;`, e.tgtDB+"_user")); err != nil {
		t.Fatal(err)
	}
	e.config(t, strings.Replace(cdcTask("only", "full_load"), `"full_load_and_cdc"`, `"cdc_only"`, 1))
	out := e.terraform(t, 2, "plan", "-detailed-exitcode")
	if !strings.Contains(out, "Change data capture only (no rows copied)") {
		t.Fatalf("the plan does not say that cdc_only copies nothing:\n%s", out)
	}
	e.terraform(t, 0, "apply", "-auto-approve")
	if got := queryString(t, e.tgt, e.tgtDB, `SELECT count(*)::text FROM app.fresh`); got != "0" {
		t.Fatalf("cdc_only copied %s rows into app.fresh", got)
	}
	e.exec(t, `UPDATE app.items SET qty = qty + 100 WHERE id % 7 = 0; DELETE FROM app.items WHERE id > 1900;
INSERT INTO app.items VALUES (5000, 'new', 1); INSERT INTO app.fresh SELECT g, 'f' || g FROM generate_series(1, 50) g`)
	e.terraform(t, 2, "plan", "-detailed-exitcode")
	e.terraform(t, 0, "apply", "-auto-approve")
	e.equal(t, "app.items", "app.fresh")
	e.terraform(t, 0, "plan", "-detailed-exitcode")

	// A slot dropped behind the task's back fails the plan: its changes are lost.
	e.exec(t, `SELECT pg_drop_replication_slot('migration_only')`)
	out = e.terraform(t, 2, "plan", "-detailed-exitcode")
	if !regexp.MustCompile(`(?s)Replication Slot Missing.*mode.*no\s+longer\s+exists.*apply\s+-replace`).MatchString(out) {
		t.Fatalf("a missing slot is not reported at plan with the way out:\n%s", out)
	}
	out = e.terraform(t, 1, "apply", "-auto-approve")
	if !strings.Contains(out, "Error: Replication Slot Missing") {
		t.Fatalf("the apply of a task whose slot is missing does not fail:\n%s", out)
	}
	// The source retired meanwhile (its database dropped, which PostgreSQL
	// allows only once no slot is left on it): destroy still goes through.
	if err := e.src.Exec(context.Background(), "postgres", `DROP DATABASE `+e.srcDB+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	e.terraform(t, 0, "destroy", "-auto-approve")
	if got := queryString(t, e.tgt, e.tgtDB, `SELECT count(*)::text FROM _migration.cdc`); got != "0" {
		t.Fatal("destroy left the task's checkpoint on the target")
	}
}
