package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// dataset is the shop dataset of ../shared/bench/dataset.sql; {{ROWS}} is
// the number of orders.
//
//go:embed dataset.sql
var dataset string

const (
	sourceDB      = "shop"       // the dataset at -rows, read by every tool
	smallSourceDB = "shop_small" // the dataset at a third of -rows, for the memory check
	memTarget     = 256          // MiB
	ratioTarget   = 0.90
	providerName  = "terraform-provider-migration"
)

// The tables the benchmark compares, as they are named on both sides.
var shopTables = []string{"shop.customers", "shop.orders"}

// result is one line of the final table.
type result struct {
	tool string
	peer bool
	took time.Duration
	note string // why it was not measured
}

// fullLoad seeds the source and times the peers and the provider on it.
func (b *bench) fullLoad(ctx context.Context, rows int, quick bool) error {
	small := rows / 3
	fmt.Printf("\n==> full load: seeding the source (%s orders in database %s, %s in %s)\n", count(rows), sourceDB, count(small), smallSourceDB)
	if err := b.seed(ctx, sourceDB, rows); err != nil {
		return err
	}
	if err := b.seed(ctx, smallSourceDB, small); err != nil {
		return err
	}
	size, err := scalar(ctx, b.src, sourceDB, "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'shop' AND relkind = 'r'")
	if err != nil {
		return err
	}
	want, err := b.rowCounts(ctx, b.src, sourceDB)
	if err != nil {
		return err
	}
	fmt.Printf("    shop: %s customers, %s orders, %s with indexes\n", want[0], want[1], size)

	loadBefore := loadAverage()
	fmt.Println("\n==> peers, each into a fresh target database")
	var results []result
	peers := []struct {
		tool  string
		quick bool // measured with -quick too
		run   func(context.Context) (time.Duration, string, error)
	}{
		{"COPY pipe, binary, one stream per table, serial", true, b.copyPipe},
		{"pgcopydb clone --table-jobs 2 --index-jobs 2", false, b.pgcopydb},
		{"native logical replication, initial sync", false, b.logicalSync},
	}
	for _, p := range peers {
		r := result{tool: p.tool, peer: true}
		if quick && !p.quick {
			r.note = "skipped (-quick)"
		} else {
			var err error
			if r.took, r.note, err = p.run(ctx); err != nil {
				return fmt.Errorf("%s: %w", p.tool, err)
			}
		}
		printResult(r)
		results = append(results, r)
	}

	fmt.Println("\n==> migration_task through terraform apply, into a fresh target database")
	took, mem, err := b.ours(ctx, sourceDB, rows)
	if err != nil {
		return fmt.Errorf("migration_task at %s orders: %w", count(rows), err)
	}
	ours := result{tool: "migration_task: terraform apply, " + count(rows), took: took}
	smallTook, smallMem, err := b.ours(ctx, smallSourceDB, small)
	if err != nil {
		return fmt.Errorf("migration_task at %s orders: %w", count(small), err)
	}
	smallOurs := result{tool: "migration_task: terraform apply, " + count(small) + " (memory check)", took: smallTook}

	report(rows, small, results, ours, smallOurs, mem, smallMem)
	// Other work on the machine skews the ratios: say how busy it was.
	fmt.Printf("load average (1 min) before the peers: %s, after the provider: %s, on %d CPUs\n", loadBefore, loadAverage(), runtime.NumCPU())
	return nil
}

// seed loads the dataset at rows orders into a new source database, then
// freezes and analyzes it: the first tool to read it must not be the one
// that sets the hint bits, nor share the machine with autovacuum.
func (b *bench) seed(ctx context.Context, db string, rows int) error {
	t0 := time.Now()
	if err := b.src.CreateDatabase(ctx, db); err != nil {
		return err
	}
	if err := b.src.Exec(ctx, db, strings.ReplaceAll(dataset, "{{ROWS}}", strconv.Itoa(rows))); err != nil {
		return fmt.Errorf("seeding %s with %d orders: %w", db, rows, err)
	}
	if err := b.src.Exec(ctx, db, "VACUUM (FREEZE, ANALYZE)"); err != nil {
		return err
	}
	fmt.Printf("    %s: %s orders seeded in %s\n", db, count(rows), time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// copyPipe is `psql -c "COPY t TO STDOUT (FORMAT binary)" | psql -c "COPY t
// FROM STDIN (FORMAT binary)"` per table, one after another, into a schema
// created beforehand by pg_dump --schema-only (untimed, keys included), as
// ../shared/bench/anchors-fullload.sh does.
func (b *bench) copyPipe(ctx context.Context) (time.Duration, string, error) {
	const db = "t_pipe"
	if err := b.targetWithSchema(ctx, db); err != nil {
		return 0, "", err
	}
	took, err := b.measure(ctx, func() error {
		for _, t := range shopTables {
			err := pipeline(ctx,
				[]string{"psql", "-X", "-q", "-d", b.src.SuperuserDSN(sourceDB), "-c", "COPY " + t + " TO STDOUT (FORMAT binary)"},
				[]string{"psql", "-X", "-q", "-d", b.dst.SuperuserDSN(db), "-c", "COPY " + t + " FROM STDIN (FORMAT binary)"})
			if err != nil {
				return fmt.Errorf("copying %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	return took, "", b.checkCopy(ctx, sourceDB, db, false)
}

// pgcopydb times `pgcopydb clone` (schema, data with 2 table jobs, indexes
// with 2 index jobs) into an empty database.
func (b *bench) pgcopydb(ctx context.Context) (time.Duration, string, error) {
	if !installed("pgcopydb") {
		return 0, "pgcopydb: not installed (apt-get install pgcopydb), skipped", nil
	}
	const db = "t_pgcopydb"
	if err := freshDatabase(ctx, b.dst, db); err != nil {
		return 0, "", err
	}
	env := append(os.Environ(), "PGCOPYDB_SOURCE_PGURI="+b.src.SuperuserDSN(sourceDB), "PGCOPYDB_TARGET_PGURI="+b.dst.SuperuserDSN(db))
	dir := filepath.Join(b.work, "pgcopydb")
	var out string
	took, err := b.measure(ctx, func() error {
		var err error
		out, err = command(ctx, b.work, env, "pgcopydb", "clone", "--dir", dir, "--table-jobs", "2", "--index-jobs", "2", "--no-owner", "--no-acl")
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("%w\n%s", err, lastLines(out, 15))
	}
	return took, "", b.checkCopy(ctx, sourceDB, db, false)
}

// logicalSync times a subscription's initial sync, from CREATE SUBSCRIPTION
// until every table is ready, into a schema created beforehand (untimed).
func (b *bench) logicalSync(ctx context.Context) (time.Duration, string, error) {
	const db, pub, sub = "t_logical", "bench_pub", "bench_sub"
	if err := b.targetWithSchema(ctx, db); err != nil {
		return 0, "", err
	}
	if err := b.src.Exec(ctx, sourceDB, "DROP PUBLICATION IF EXISTS "+pub+"; CREATE PUBLICATION "+pub+" FOR TABLES IN SCHEMA shop"); err != nil {
		return 0, "", err
	}
	conn, err := pgx.Connect(ctx, b.dst.SuperuserDSN(db))
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	took, err := b.measure(ctx, func() error {
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION 'host=%s port=%d user=postgres dbname=%s' PUBLICATION %s",
			sub, b.src.Host, b.src.Port, sourceDB, pub))
		if err != nil {
			return err
		}
		return poll(ctx, 50*time.Millisecond, syncLimit, "initial sync of "+sub, func() (bool, error) {
			return subscriptionReady(ctx, conn, sub)
		})
	})
	// Dropping the subscription drops its slot on the source.
	if _, dropErr := conn.Exec(context.WithoutCancel(ctx), "DROP SUBSCRIPTION IF EXISTS "+sub); err == nil {
		err = dropErr
	}
	if dropErr := b.src.Exec(context.WithoutCancel(ctx), sourceDB, "DROP PUBLICATION IF EXISTS "+pub); err == nil {
		err = dropErr
	}
	if err != nil {
		return 0, "", err
	}
	return took, "", b.checkCopy(ctx, sourceDB, db, false)
}

// ours times `terraform apply` of one migration_task copying shop.* from
// from (rows orders) into a fresh target database, terraform's start-up
// included, sampling the provider's memory every 50 ms, then verifies the copy.
func (b *bench) ours(ctx context.Context, from string, rows int) (time.Duration, memPeak, error) {
	db := "t_ours_" + strconv.Itoa(rows)
	if err := freshDatabase(ctx, b.dst, db); err != nil {
		return 0, memPeak{}, err
	}
	dir := filepath.Join(b.work, "tf-"+db)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, memPeak{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(b.taskConfig("bench", "full_load", from, db)), 0o600); err != nil {
		return 0, memPeak{}, err
	}
	took, mem, err := b.apply(ctx, dir)
	if err != nil {
		return 0, memPeak{}, err
	}
	fmt.Printf("    %s orders: apply %.2f s, provider peak RSS %.1f MiB (%d provider processes sampled)\n",
		count(rows), took.Seconds(), mem.MiB(), mem.procs)
	if err := b.checkCopy(ctx, from, db, true); err != nil {
		return 0, memPeak{}, err
	}
	fmt.Println("    verified: row counts and digests of", strings.Join(shopTables, " and "), "equal the source's")
	return took, mem, nil
}

// taskConfig is the configuration of endpoints on sourceDB and targetDB and
// of a migration_task called name moving shop.* between them in mode.
func (b *bench) taskConfig(name, mode, sourceDB, targetDB string) string {
	endpoint := func(name string, pg *testenv.Postgres, db string) string {
		return fmt.Sprintf("resource \"migration_endpoint\" %q {\n  postgres = { host = %q, port = %d, database = %q, username = \"postgres\", sslmode = \"disable\" }\n}\n",
			name, pg.Host, pg.Port, db)
	}
	return `terraform {
  required_providers {
    migration = { source = "migrationworks/migration" }
  }
}
` + endpoint("source", b.src, sourceDB) + endpoint("target", b.target(targetDB), targetDB) + fmt.Sprintf(`resource "migration_task" "bench" {
  name               = %q
  source_endpoint_id = migration_endpoint.source.id
  target_endpoint_id = migration_endpoint.target.id
  mode               = %q
  wait_for           = "full_load"
  tables             = [{ source = "shop.*" }]
  parallelism        = %d
}
`, name, mode, b.parallelism)
}

// targetWithSchema creates database db on the target with the source's shop
// schema, as `pg_dump --schema-only -n shop | psql` (primary keys included).
func (b *bench) targetWithSchema(ctx context.Context, db string) error {
	if err := freshDatabase(ctx, b.dst, db); err != nil {
		return err
	}
	return pipeline(ctx,
		[]string{"pg_dump", "--schema-only", "-n", "shop", "-d", b.src.SuperuserDSN(sourceDB)},
		[]string{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.dst.SuperuserDSN(db)})
}

// rowCounts counts the rows of each of shopTables.
func (b *bench) rowCounts(ctx context.Context, pg *testenv.Postgres, db string) ([]string, error) {
	var out []string
	for _, t := range shopTables {
		n, err := scalar(ctx, pg, db, "SELECT count(*)::text FROM "+t)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// digests are order-independent digests of each of shopTables.
func (b *bench) digests(ctx context.Context, pg *testenv.Postgres, db string) ([]string, error) {
	var out []string
	for _, t := range shopTables {
		d, err := scalar(ctx, pg, db, "SELECT md5(string_agg(md5(t::text), '' ORDER BY id)) FROM "+t+" t")
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// checkCopy compares the row counts (and digests when deep) of database db
// on the target with those of from on the source, then drops db.
func (b *bench) checkCopy(ctx context.Context, from, db string, deep bool) error {
	check := []func(context.Context, *testenv.Postgres, string) ([]string, error){b.rowCounts}
	if deep {
		check = append(check, b.digests)
	}
	for i, f := range check {
		want, err := f(ctx, b.src, from)
		if err != nil {
			return err
		}
		got, err := f(ctx, b.dst, db)
		if err != nil {
			return fmt.Errorf("verification FAILED: reading the copy in %s: %w", db, err)
		}
		for j, t := range shopTables {
			if got[j] != want[j] {
				what := [...]string{"rows", "digest"}[i]
				return fmt.Errorf("verification FAILED: %s in %s: %s %s on the target, %s on the source", t, db, what, got[j], want[j])
			}
		}
	}
	return dropDatabase(ctx, b.dst, db)
}

// loadAverage is the first field of /proc/loadavg, or "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// installed reports whether name is on PATH.
func installed(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// printResult prints a measurement as soon as it is known.
func printResult(r result) {
	if r.note != "" {
		fmt.Printf("    %-56s %s\n", r.tool, r.note)
		return
	}
	fmt.Printf("    %-56s %8.2f s\n", r.tool, r.took.Seconds())
}

// report prints the final table: each time and its ratio to the fastest
// peer, then the provider's figures against the targets.
func report(rows, small int, peers []result, ours, smallOurs result, mem, smallMem memPeak) {
	var fastest *result
	for i, p := range peers {
		if p.note == "" && (fastest == nil || p.took < fastest.took) {
			fastest = &peers[i]
		}
	}
	fmt.Printf("\n==> full load of shop at %s orders, one run; ratio = seconds / fastest peer (%s)\n", count(rows), fastest.tool)
	fmt.Printf("%-60s %9s %7s\n", "tool", "seconds", "ratio")
	for _, r := range append(peers, ours) {
		if r.note != "" {
			fmt.Printf("%-60s %9s %7s  %s\n", r.tool, "-", "-", r.note)
			continue
		}
		fmt.Printf("%-60s %9.2f %7.2f\n", r.tool, r.took.Seconds(), r.took.Seconds()/fastest.took.Seconds())
	}
	fmt.Printf("%-60s %9.2f %7s\n", smallOurs.tool, smallOurs.took.Seconds(), "-")

	ratio := ours.took.Seconds() / fastest.took.Seconds()
	fmt.Printf("\nprovider / fastest peer: %.2f (target ≤ %.2f: %s)\n", ratio, ratioTarget, verdict(ratio <= ratioTarget))
	// Peak RSS moves by a MiB or two between runs of the same size (GC
	// timing, sampling): growth with the data shows as a rise beyond that.
	grew := mem.MiB() > smallMem.MiB()*(1+memNoise)
	fmt.Printf("peak RSS %s: %.1f MiB, %s: %.1f MiB, %+.1f MiB (target ≤ %d MiB at %s: %s; no higher at %s than at %s, "+
		"beyond %.0f%% run-to-run noise: %s)\n",
		count(small), smallMem.MiB(), count(rows), mem.MiB(), mem.MiB()-smallMem.MiB(), memTarget, count(rows),
		verdict(mem.MiB() <= memTarget), count(rows), count(small), memNoise*100, verdict(!grew))
}

// memNoise is the run-to-run variation of peak RSS at one size.
const memNoise = 0.10

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// count writes 3000000 as 3M and 300000 as 300k.
func count(n int) string {
	switch {
	case n >= 1000000 && n%100000 == 0:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1000 && n%100 == 0:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.Itoa(n)
}
