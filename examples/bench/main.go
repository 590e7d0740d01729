// Command bench measures the provider against the tools a user would pick
// instead, in one run on this machine, and prints times and ratios (never
// absolute thresholds). Run it with `make bench`.
//
// Measured now: the assessment step — migration_catalog reading a database
// of 200 tables, through the engine and through a whole `terraform apply` —
// against `pg_dump --schema-only` of the same database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

func main() {
	tables := flag.Int("tables", 200, "tables in the assessed database")
	runs := flag.Int("runs", 5, "repetitions of each measurement; the median is reported")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *tables, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, tables, runs int) error {
	work, err := os.MkdirTemp("", "migration-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	rc, err := testenv.BuildProvider(ctx, ".", filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer func() { _ = pg.Stop() }()
	if err := pg.CreateDatabase(ctx, "assess"); err != nil {
		return err
	}
	if err := pg.Exec(ctx, "assess", schemaSQL(tables)); err != nil {
		return fmt.Errorf("creating %d tables: %w", tables, err)
	}
	fmt.Printf("catalog of %d tables (each with a key, 8 columns, an index, a foreign key; 100 rows), median of %d runs\n\n", tables, runs)

	spec := endpoint.Spec{Postgres: &postgres.Config{Host: pg.Host, Port: pg.Port, Database: "assess", Username: "postgres", SSLMode: "disable"}}
	engineT, err := median(runs, func() error {
		c, _, err := endpoint.ReadCatalog(ctx, spec, nil)
		if err == nil && len(c.Tables) != tables {
			err = fmt.Errorf("catalog has %d tables, want %d", len(c.Tables), tables)
		}
		return err
	})
	if err != nil {
		return err
	}

	tf := filepath.Join(work, "tf")
	if err := os.MkdirAll(tf, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tf, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    migration = { source = "migrationworks/migration" }
  }
}
resource "migration_endpoint" "db" {
  postgres = { host = %q, port = %d, database = "assess", username = "postgres", sslmode = "disable" }
}
data "migration_catalog" "db" { endpoint_id = migration_endpoint.db.id }
output "tables" { value = data.migration_catalog.db.table_count }
`, pg.Host, pg.Port)), 0o600); err != nil {
		return err
	}
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1")
	if out, err := command(ctx, tf, env, "terraform", "apply", "-auto-approve", "-no-color"); err != nil {
		return fmt.Errorf("terraform apply: %w\n%s", err, out)
	}
	// A plan refreshes the endpoint and re-reads the catalog: the reviewer's wait.
	planT, err := median(runs, func() error {
		out, err := command(ctx, tf, env, "terraform", "plan", "-no-color", "-detailed-exitcode")
		if err == nil && !strings.Contains(out, "No changes") {
			err = errors.New("plan after apply is not empty:\n" + out)
		}
		return err
	})
	if err != nil {
		return err
	}
	dumpT, err := median(runs, func() error {
		_, err := command(ctx, work, os.Environ(), "pg_dump", "--schema-only", "-d", pg.SuperuserDSN("assess"), "-f", filepath.Join(work, "schema.sql"))
		return err
	})
	if err != nil {
		return err
	}

	fmt.Printf("%-52s %10s %8s\n", "measurement", "seconds", "ratio")
	fmt.Printf("%-52s %10.3f %8s\n", "pg_dump --schema-only (peer)", dumpT.Seconds(), "1.00")
	fmt.Printf("%-52s %10.3f %8.2f\n", "engine: endpoint.ReadCatalog", engineT.Seconds(), engineT.Seconds()/dumpT.Seconds())
	fmt.Printf("%-52s %10.3f %8.2f\n", "terraform plan (refresh + catalog read, CLI start-up)", planT.Seconds(), planT.Seconds()/dumpT.Seconds())
	return nil
}

func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func median(runs int, f func() error) (time.Duration, error) {
	ds := make([]time.Duration, 0, runs)
	for range runs {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	for i := range ds {
		for j := i + 1; j < len(ds); j++ {
			if ds[j] < ds[i] {
				ds[i], ds[j] = ds[j], ds[i]
			}
		}
	}
	return ds[len(ds)/2], nil
}

// schemaSQL creates n tables of a realistic shape, each referencing the previous one.
func schemaSQL(n int) string {
	var b strings.Builder
	b.WriteString("CREATE SCHEMA app;\n")
	for i := range n {
		t := "app.t" + strconv.Itoa(i)
		fmt.Fprintf(&b, "CREATE TABLE %s (id bigint PRIMARY KEY, parent_id bigint, name text NOT NULL, amount numeric(12,2), "+
			"created_at timestamptz NOT NULL DEFAULT now(), tags text[], doc jsonb, flag boolean DEFAULT false);\n", t)
		fmt.Fprintf(&b, "CREATE INDEX ON %s (created_at);\n", t)
		if i > 0 {
			fmt.Fprintf(&b, "ALTER TABLE %s ADD FOREIGN KEY (parent_id) REFERENCES app.t%d (id);\n", t, i-1)
		}
		fmt.Fprintf(&b, "INSERT INTO %s (id, name, amount) SELECT g, 'n' || g, g FROM generate_series(1, 100) g;\n", t)
	}
	b.WriteString("ANALYZE;\n")
	return b.String()
}
