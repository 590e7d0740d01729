package provider

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// awkwardSchemaSQL is every kind of value a full load must carry unchanged.
const awkwardSchemaSQL = `
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.positive AS integer CHECK (VALUE > 0);
CREATE TABLE app.kinds (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  n numeric, n2 numeric(12,2), f float8, r real,
  ts timestamp, tstz timestamptz, d date, iv interval,
  arr int[], tarr text[], j json, jb jsonb, b bytea,
  m app.mood, p app.positive,
  total numeric GENERATED ALWAYS AS (n2 * 2) STORED,
  big text);
INSERT INTO app.kinds (n, n2, f, r, ts, tstz, d, iv, arr, tarr, j, jb, b, m, p, big) VALUES
  ('NaN', 1.50, 'NaN', 'Infinity', 'infinity', '-infinity', 'infinity', '1 year 2 months 3 days 04:05:06.789',
   '{1,NULL,3}', '{"a",NULL,"c d"}', '{"b": 1,  "a": [1,2]}', '{"b": 1, "a": [1,2]}', '\x00ff10', 'happy', 7, repeat('x', 150000)),
  (-1.5e-20, -99.99, '-Infinity', '-0', '2024-02-29 23:59:59.999999', '2024-02-29 23:59:59.999999+05:30', '0001-01-01', '-1 day',
   '{}', '{}', 'null', 'null', '', 'sad', 1, md5('a')),
  (NULL, NULL, 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO app.kinds (n, n2, f, tstz, jb, big)
  SELECT g, g / 100.0, g * 0.5, timestamptz '2024-01-01' + g * interval '1 minute', jsonb_build_object('g', g), repeat(md5(g::text), 20)
  FROM generate_series(1, 20000) g;
CREATE TABLE app."MixedCase" ("Id" int PRIMARY KEY, "select" text, "from" text);
INSERT INTO app."MixedCase" SELECT g, 'sel ' || g, NULL FROM generate_series(1, 500) g;
CREATE TABLE app.events (id bigint NOT NULL, at timestamptz NOT NULL, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO app.events SELECT g, timestamptz '2024-01-01' + (g % 700) * interval '1 day', 'e' || g FROM generate_series(1, 5000) g;
CREATE TABLE app.dupes (a int, b text);
INSERT INTO app.dupes SELECT 1, 'same' FROM generate_series(1, 300);
INSERT INTO app.dupes SELECT g % 7, 'other' FROM generate_series(1, 3000) g;
CREATE TABLE app.customers (id int PRIMARY KEY, email text NOT NULL, name text, country text);
INSERT INTO app.customers SELECT g, 'user' || g || '@example.com', 'Name ' || g, (ARRAY['US','DE','FR'])[1 + g % 3] FROM generate_series(1, 1000) g;
CREATE TABLE app.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES app.customers, amount numeric(10,2), note text);
INSERT INTO app.orders SELECT g, 1 + g % 1000, g / 3.0, 'note ' || g FROM generate_series(1, 8000) g;
ANALYZE;
`

// digest is an order-independent digest of a table's rows, with the row count.
func digest(t *testing.T, pg *testenv.Postgres, db, table string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.SuperuserDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	var sum string
	q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') FROM %s t`, table)
	if err := conn.QueryRow(context.Background(), q).Scan(&n, &sum); err != nil {
		t.Fatalf("digest of %s in %s: %v", table, db, err)
	}
	return fmt.Sprintf("%d rows, md5 %s", n, sum)
}

func queryString(t *testing.T, pg *testenv.Postgres, db, q string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.SuperuserDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(context.Background(), q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

// taskDatabases creates a source database with schema sql and an empty
// target, each with its own password-protected role.
func taskDatabases(t *testing.T, name, sql string) (pg *testenv.Postgres, src, tgt string) {
	t.Helper()
	pg = sharedPostgres(t)
	src, srcRole := newDatabase(t, pg, name+"_src", "src-pw")
	tgt, _ = newDatabase(t, pg, name+"_tgt", "tgt-pw")
	if sql != "" {
		if err := pg.Exec(context.Background(), src, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.Exec(context.Background(), src, fmt.Sprintf(
		`DO $$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%%' AND nspname <> 'information_schema' LOOP
		   EXECUTE format('GRANT USAGE ON SCHEMA %%I TO %%I', s, '%[1]s'); EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %%I TO %%I', s, '%[1]s'); END LOOP; END $$`, srcRole)); err != nil {
		t.Fatal(err)
	}
	return pg, src, tgt
}

func taskEndpoints(pg *testenv.Postgres, src, tgt string) string {
	return fmt.Sprintf(`
resource "migration_endpoint" "src" {
  postgres = { host = "127.0.0.1", port = %[1]d, database = %[2]q, username = "%[2]s_user", password_wo = "src-pw", password_wo_version = 1, sslmode = "disable" }
}
resource "migration_endpoint" "tgt" {
  postgres = { host = "127.0.0.1", port = %[1]d, database = %[3]q, username = "%[3]s_user", password_wo = "tgt-pw", password_wo_version = 1, sslmode = "disable" }
}
`, pg.Port, src, tgt)
}

func TestAccTask_fullLoadAwkwardTypes(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_load", awkwardSchemaSQL)
	cfg := taskEndpoints(pg, src, tgt) + `
resource "migration_task" "t" {
  name               = "awkward"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "app.*" }]
  parallelism        = 3
}
`
	tables := []string{`app.kinds`, `app."MixedCase"`, `app.events`, `app.dupes`, `app.customers`, `app.orders`}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		// on_destroy defaults to keep_target: the records go, the data stays.
		CheckDestroy: func(*terraform.State) error {
			if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM _migration.tasks WHERE name = 'awkward'`); got != "0" {
				return fmt.Errorf("destroy left the task's control records")
			}
			if a, b := digest(t, pg, src, "app.orders"), digest(t, pg, tgt, "app.orders"); a != b {
				return fmt.Errorf("destroy touched target data: app.orders is %s, want %s", b, a)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("phase"), knownvalue.StringExact("done")),
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("rows_copied"), knownvalue.Int64Exact(20003+500+5000+3300+1000+8000)),
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("progress"), knownvalue.ListSizeExact(6)),
				},
				Check: func(*terraform.State) error {
					for _, tbl := range tables {
						if a, b := digest(t, pg, src, tbl), digest(t, pg, tgt, tbl); a != b {
							return fmt.Errorf("%s differs: source %s, target %s", tbl, a, b)
						}
					}
					// Keys, foreign keys and the identity sequence came along.
					if got := queryString(t, pg, tgt, `SELECT string_agg(conname || ':' || contype::text, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'app.orders'::regclass`); !strings.Contains(got, ":p") || !strings.Contains(got, ":f") {
						return fmt.Errorf("app.orders constraints on the target: %s", got)
					}
					if got := queryString(t, pg, tgt, `SELECT (nextval(pg_get_serial_sequence('app.kinds', 'id')) > 20003)::text`); got != "true" {
						return fmt.Errorf("identity sequence of app.kinds not advanced past the copied ids")
					}
					// Autovacuum, off during the load, is back to the server's default.
					if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
						WHERE n.nspname = 'app' AND c.relkind = 'r' AND array_to_string(c.reloptions, ',') LIKE '%autovacuum%'`); got != "0" {
						return fmt.Errorf("%s target tables still have autovacuum settings after the load", got)
					}
					if got := queryString(t, pg, tgt, `SELECT relkind::text FROM pg_class WHERE oid = 'app.events'::regclass`); got != "p" {
						return fmt.Errorf("app.events is not partitioned on the target (relkind %s)", got)
					}
					return nil
				},
			},
			// A finished task's next plan is empty.
			{
				Config:            cfg,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("phase"), knownvalue.StringExact("done"))},
			},
			// The source retired after the migration: plans still work.
			{
				PreConfig: func() {
					if err := pg.Exec(context.Background(), "postgres", fmt.Sprintf(`ALTER ROLE %s_user NOLOGIN`, src)); err != nil {
						t.Fatal(err)
					}
				},
				Config:   cfg,
				PlanOnly: true,
			},
			// Import adopts the task by name.
			{
				ResourceName:  "migration_task.t",
				ImportState:   true,
				ImportStateId: "awkward",
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["name"] != "awkward" || states[0].ID != "awkward" {
						return fmt.Errorf("imported %d states, first %v; want the task named awkward", len(states), states)
					}
					return nil
				},
			},
		},
	})
}

func TestAccTask_whereAndMasking(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_mask", awkwardSchemaSQL)
	cfg := taskEndpoints(pg, src, tgt) + `
resource "migration_task" "t" {
  name               = "masked"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables = [
    { source = "app.customers", target = "test.customers",
      where   = "country = 'DE'",
      columns = { exclude = ["country"], rename = { name = "full_name" }, transform = { email = "sha256", name = "redact" } } },
    { source = "app.orders", target = "test.orders", where = "id % 20 = 0",
      columns = { transform = { amount = "cast:bigint" } } },
  ]
}
`
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: func(*terraform.State) error {
				want := queryString(t, pg, src, `SELECT count(*)::text FROM app.customers WHERE country = 'DE'`)
				if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM test.customers`); got != want {
					return fmt.Errorf("test.customers has %s rows, want %s (the where subset)", got, want)
				}
				if got := queryString(t, pg, tgt, `SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'test' AND table_name = 'customers'`); got != "id,email,full_name" {
					return fmt.Errorf("test.customers columns = %s, want id,email,full_name", got)
				}
				// sha256 keeps joins: the digest of a known email matches.
				if got := queryString(t, pg, tgt, `SELECT email FROM test.customers WHERE id = 1`); got != queryString(t, pg, src, `SELECT encode(sha256(convert_to('user1@example.com', 'UTF8')), 'hex')`) {
					return fmt.Errorf("email of customer 1 is %q, want its sha256", got)
				}
				if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM test.customers WHERE full_name LIKE 'Name %' OR email LIKE '%@%'`); got != "0" {
					return fmt.Errorf("%s rows still hold clear names or emails", got)
				}
				if got := queryString(t, pg, tgt, `SELECT data_type FROM information_schema.columns WHERE table_schema = 'test' AND table_name = 'orders' AND column_name = 'amount'`); got != "bigint" {
					return fmt.Errorf("test.orders.amount is %s, want bigint", got)
				}
				if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM test.orders`); got != "400" {
					return fmt.Errorf("test.orders has %s rows, want 400", got)
				}
				return nil
			},
		}},
	})
}

// Bad input is an error at plan time, and nothing is written to the target.
func TestAccTask_badInput(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_taskbad", awkwardSchemaSQL)
	port := closedPort(t)
	task := func(tables string, extra string) string {
		return taskEndpoints(pg, src, tgt) + fmt.Sprintf(`
resource "migration_task" "t" {
  name               = "bad"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = %s
  %s
}
`, tables, extra)
	}
	cases := []struct{ name, config, want string }{
		{"unknown mode", task(`[{ source = "app.orders" }]`, `mode = "copy"`), `(?s)mode.*value must be one of`},
		{"empty tables", task(`[]`, ``), `(?s)tables.*at least 1`},
		{"missing table", task(`[{ source = "app.ordrs" }]`, ``), `(?s)tables\[0\]\.source.*app\.ordrs.*app\.orders`},
		{"missing column", task(`[{ source = "app.orders", columns = { exclude = ["nope"] } }]`, ``), `(?s)tables\[0\]\.columns\.exclude.*nope`},
		{"invalid where", task(`[{ source = "app.orders", where = "amount >" }]`, ``), `(?s)tables\[0\]\.where.*syntax error`},
		{"where unknown column", task(`[{ source = "app.orders", where = "amout > 1" }]`, ``), `(?s)tables\[0\]\.where.*amout`},
		{"rename onto existing column", task(`[{ source = "app.orders", columns = { rename = { note = "amount" } } }]`, ``), `(?s)tables\[0\]\.columns\.rename.*amount`},
		{"unknown transform", task(`[{ source = "app.orders", columns = { transform = { note = "rot13" } } }]`, ``), `(?s)tables\[0\]\.columns\.transform.*rot13`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   requireWriteOnly,
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{{Config: tc.config, ExpectError: regexp.MustCompile(tc.want)}},
			})
		})
	}
	t.Run("unreachable source", func(t *testing.T) {
		cfg := fmt.Sprintf(`
resource "migration_endpoint" "tgt" {
  postgres = { host = "127.0.0.1", port = %[1]d, database = %[2]q, username = "%[2]s_user", password_wo = "tgt-pw", password_wo_version = 1, sslmode = "disable" }
}
resource "migration_task" "t" {
  name               = "bad"
  source_endpoint_id = "postgres://nobody@127.0.0.1:%[3]d/nowhere?sslmode=disable"
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "app.orders" }]
}`, pg.Port, tgt, port)
		resource.Test(t, resource.TestCase{
			TerraformVersionChecks:   requireWriteOnly,
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps:                    []resource.TestStep{{Config: cfg, ExpectError: regexp.MustCompile(fmt.Sprintf(`(?s)Nothing answered at\s+127\.0\.0\.1:%d`, port))}},
		})
	})
	// The target never saw a write: no control schema, no tables.
	if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM pg_namespace WHERE nspname IN ('_migration', 'app')`); got != "0" {
		t.Fatalf("bad input wrote to the target: %s of the schemas _migration, app exist", got)
	}
}

// A load cut short by its timeout ends with a warning, not an error (so the
// task is not tainted); the next plan shows it pending and the next apply resumes.
func TestAccTask_timeoutResumes(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_timeout", `
CREATE SCHEMA big;
CREATE TABLE big.rows (id bigint PRIMARY KEY, pad text);
INSERT INTO big.rows SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 600000) g;
ANALYZE;`)
	cfg := func(timeout string) string {
		return taskEndpoints(pg, src, tgt) + fmt.Sprintf(`
resource "migration_task" "t" {
  name               = "slow"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "big.rows" }]
  parallelism        = 1
  timeouts           = { create = %q, update = "10m" }
}`, timeout)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:             cfg("1s"),
				ExpectNonEmptyPlan: true, // the unfinished task plans an update
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("phase"), knownvalue.StringRegexp(regexp.MustCompile(`^(pending|loading)$`))),
				},
			},
			{
				Config: cfg("1s"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("migration_task.t", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("phase"), knownvalue.StringExact("done")),
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("rows_copied"), knownvalue.Int64Exact(600000)),
				},
				Check: func(*terraform.State) error {
					if a, b := digest(t, pg, src, "big.rows"), digest(t, pg, tgt, "big.rows"); a != b {
						return fmt.Errorf("big.rows differs after resume: source %s, target %s", a, b)
					}
					return nil
				},
			},
			{Config: cfg("1s"), PlanOnly: true},
		},
	})
}

// TestAccTask_resumeAfterKill kills the real provider process with SIGKILL
// mid-copy, then applies again: the load completes with nothing lost and
// nothing duplicated (a keyless table with identical rows included), and
// the plan after it is empty.
func TestAccTask_resumeAfterKill(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_kill", `
CREATE SCHEMA big;
CREATE TABLE big.keyed (id bigint PRIMARY KEY, pad text);
INSERT INTO big.keyed SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g;
CREATE TABLE big.keyless (a int, pad text);
INSERT INTO big.keyless SELECT 1, repeat('same', 60) FROM generate_series(1, 300000);
ANALYZE;`)
	cliConfig := buildProvider(t)
	work := t.TempDir()
	mainTF := `
terraform {
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
    "` + src + `_user@127.0.0.1:` + fmt.Sprint(pg.Port) + `/` + src + `" = var.src_pw
    "` + tgt + `_user@127.0.0.1:` + fmt.Sprint(pg.Port) + `/` + tgt + `" = var.tgt_pw
  }
}
` + strings.ReplaceAll(strings.ReplaceAll(taskEndpoints(pg, src, tgt), `"src-pw"`, "var.src_pw"), `"tgt-pw"`, "var.tgt_pw") + `
resource "migration_task" "t" {
  name               = "killed"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "big.*" }]
  parallelism        = 2
}
`
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(mainTF), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"TF_CLI_CONFIG_FILE=" + cliConfig, "TF_IN_AUTOMATION=1", "TF_VAR_src_pw=src-pw", "TF_VAR_tgt_pw=tgt-pw", "TF_LOG=INFO", "PGPASSWORD="}

	// First apply: kill the provider as soon as a chunk has been copied.
	if !applyAndKill(t, work, env, "chunk copied") {
		t.Fatal("the first apply finished before a chunk was logged; nothing was killed")
	}
	if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM _migration.chunks WHERE done_at IS NOT NULL`); got == "0" {
		t.Fatal("no chunk was recorded before the kill")
	}

	// Second apply resumes; then the plan is empty.
	out, code := terraformRun(t, work, env, "apply", "-auto-approve", "-no-color")
	if code != 0 {
		t.Fatalf("apply after the kill: exit %d\n%s", code, out)
	}
	for _, tbl := range []string{"big.keyed", "big.keyless"} {
		if a, b := digest(t, pg, src, tbl), digest(t, pg, tgt, tbl); a != b {
			t.Fatalf("%s differs after resume: source %s, target %s", tbl, a, b)
		}
	}
	if out, code := terraformRun(t, work, env, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Fatalf("plan after completion: exit %d, want 0 (empty)\n%s", code, out)
	}
}

// applyAndKill runs terraform apply in dir with TF_LOG=INFO and kills the
// provider process (kill -9) when its log first shows marker; it reports
// whether it did before the apply ended.
func applyAndKill(t *testing.T, dir string, env []string, marker string) bool {
	t.Helper()
	cmd := exec.Command("terraform", "apply", "-auto-approve", "-no-color")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), "TF_LOG=INFO")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !killed && strings.Contains(sc.Text(), marker) {
			killed = killProvider(t, cmd.Process.Pid)
		}
	}
	_ = cmd.Wait()
	return killed
}

// killProvider sends SIGKILL to the terraform-provider-migration process
// below the terraform process pid.
func killProvider(t *testing.T, terraformPID int) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			if err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), "terraform-provi") {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) > 1 && fields[1] == fmt.Sprint(terraformPID) {
				pid, err := strconv.Atoi(e.Name())
				if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
					return true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Changing what defines the data (here the where) reloads the task's
// tables; on_destroy = "drop_target" drops them on destroy.
func TestAccTask_reloadAndDropTarget(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_reload", awkwardSchemaSQL)
	cfg := func(where string) string {
		return taskEndpoints(pg, src, tgt) + fmt.Sprintf(`
resource "migration_task" "t" {
  name               = "reload"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "app.customers", where = %q }]
  on_destroy         = "drop_target"
}`, where)
	}
	count := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM app.customers`); got != want {
				return fmt.Errorf("app.customers has %s rows on the target, want %s", got, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if got := queryString(t, pg, tgt, `SELECT (to_regclass('app.customers') IS NULL)::text`); got != "true" {
				return fmt.Errorf("on_destroy = drop_target left app.customers on the target")
			}
			if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM _migration.tasks WHERE name = 'reload'`); got != "0" {
				return fmt.Errorf("destroy left the task's control records")
			}
			return nil
		},
		Steps: []resource.TestStep{
			{Config: cfg("id <= 100"), Check: count("100")},
			{
				Config: cfg("id <= 250"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("migration_task.t", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("migration_task.t", tfjsonpath.New("rows_copied")),
				}},
				Check: count("250"),
			},
			// Not data-defining: in place, nothing copied again.
			{
				Config: strings.Replace(cfg("id <= 250"), `on_destroy         = "drop_target"`, `on_destroy         = "drop_target"
  parallelism        = 2`, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("migration_task.t", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("rows_copied"), knownvalue.Int64Exact(250)),
				}},
				Check: count("250"),
			},
		},
	})
}

// wait_for = "none" creates the target tables and records the task without
// copying; switching to "full_load" copies.
func TestAccTask_waitForNone(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_none", awkwardSchemaSQL)
	cfg := func(waitFor string) string {
		return taskEndpoints(pg, src, tgt) + fmt.Sprintf(`
resource "migration_task" "t" {
  name               = "staged"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "app.customers" }]
  wait_for           = %q
}`, waitFor)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg("none"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("phase"), knownvalue.StringExact("pending")),
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("rows_copied"), knownvalue.Int64Exact(0)),
				},
				Check: func(*terraform.State) error {
					if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM app.customers`); got != "0" {
						return fmt.Errorf("wait_for = none copied %s rows", got)
					}
					return nil
				},
			},
			{Config: cfg("none"), PlanOnly: true},
			{
				Config: cfg("full_load"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("phase"), knownvalue.StringExact("done")),
					statecheck.ExpectKnownValue("migration_task.t", tfjsonpath.New("rows_copied"), knownvalue.Int64Exact(1000)),
				},
			},
		},
	})
}

// An existing target table of another shape is a plan-time error naming the
// columns that differ; one holding foreign rows is refused too.
func TestAccTask_existingTargetTable(t *testing.T) {
	pg, src, tgt := taskDatabases(t, "acc_exist", awkwardSchemaSQL)
	if err := pg.Exec(context.Background(), tgt, `CREATE SCHEMA app; GRANT ALL ON SCHEMA app TO acc_exist_tgt_user;
		CREATE TABLE app.customers (id int PRIMARY KEY, email int, extra text NOT NULL);
		CREATE TABLE app.orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2), note text);
		INSERT INTO app.orders VALUES (1, 1, 1, 'already here');
		ALTER TABLE app.customers OWNER TO acc_exist_tgt_user; ALTER TABLE app.orders OWNER TO acc_exist_tgt_user;`); err != nil {
		t.Fatal(err)
	}
	task := func(source string) string {
		return taskEndpoints(pg, src, tgt) + fmt.Sprintf(`
resource "migration_task" "t" {
  name               = "exist"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = %q }]
}`, source)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: task("app.customers"), ExpectError: regexp.MustCompile(`(?s)app\.customers.*email.*extra`)},
			{Config: task("app.orders"), ExpectError: regexp.MustCompile(`(?s)Target Table Not Empty.*app\.orders.*TRUNCATE`)},
		},
	})
	if got := queryString(t, pg, tgt, `SELECT count(*)::text FROM pg_namespace WHERE nspname = '_migration'`); got != "0" {
		t.Fatal("a refused plan wrote the control schema to the target")
	}
}
