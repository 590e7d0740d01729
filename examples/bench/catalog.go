package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// catalog times migration_catalog reading a database of tables tables (the
// engine alone, and a whole `terraform plan`) against
// `pg_dump --schema-only`, the median of runs runs each.
func (b *bench) catalog(ctx context.Context, tables, runs int) error {
	const db = "assess"
	if err := b.src.CreateDatabase(ctx, db); err != nil {
		return err
	}
	if err := b.src.Exec(ctx, db, schemaSQL(tables)); err != nil {
		return fmt.Errorf("creating %d tables: %w", tables, err)
	}
	fmt.Printf("\n==> catalog of %d tables (each with a key, 8 columns, an index, a foreign key; 100 rows), median of %d runs\n", tables, runs)

	spec := endpoint.Spec{Postgres: &postgres.Config{Host: b.src.Host, Port: b.src.Port, Database: db, Username: "postgres", SSLMode: "disable"}}
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

	tf := filepath.Join(b.work, "tf-catalog")
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
  postgres = { host = %q, port = %d, database = %q, username = "postgres", sslmode = "disable" }
}
data "migration_catalog" "db" { endpoint_id = migration_endpoint.db.id }
output "tables" { value = data.migration_catalog.db.table_count }
`, b.src.Host, b.src.Port, db)), 0o600); err != nil {
		return err
	}
	env := b.terraformEnv()
	if out, err := command(ctx, tf, env, "terraform", "apply", "-auto-approve", "-no-color", "-input=false"); err != nil {
		return fmt.Errorf("terraform apply: %w\n%s", err, out)
	}
	// A plan refreshes the endpoint and re-reads the catalog: the reviewer's wait.
	planT, err := median(runs, func() error {
		out, err := command(ctx, tf, env, "terraform", "plan", "-no-color", "-input=false", "-detailed-exitcode")
		if err == nil && !strings.Contains(out, "No changes") {
			err = errors.New("plan after apply is not empty:\n" + out)
		}
		return err
	})
	if err != nil {
		return err
	}
	taskT, err := b.planTask(ctx, db, tables, runs)
	if err != nil {
		return err
	}
	dumpT, err := median(runs, func() error {
		_, err := command(ctx, b.work, os.Environ(), "pg_dump", "--schema-only", "-d", b.src.SuperuserDSN(db), "-f", filepath.Join(b.work, "schema.sql"))
		return err
	})
	if err != nil {
		return err
	}

	fmt.Printf("%-52s %10s %8s\n", "measurement", "seconds", "ratio")
	fmt.Printf("%-52s %10.3f %8s\n", "pg_dump --schema-only (peer)", dumpT.Seconds(), "1.00")
	fmt.Printf("%-52s %10.3f %8.2f\n", "engine: endpoint.ReadCatalog", engineT.Seconds(), engineT.Seconds()/dumpT.Seconds())
	fmt.Printf("%-52s %10.3f %8.2f\n", "terraform plan (refresh + catalog read, CLI start-up)", planT.Seconds(), planT.Seconds()/dumpT.Seconds())
	fmt.Printf("%-52s %10.3f %8.2f  (target < 5 s: %s)\n", "terraform plan of a migration_task over every table",
		taskT.Seconds(), taskT.Seconds()/dumpT.Seconds(), verdict(taskT < 5*time.Second))
	return nil
}

// planTask times the reviewer's wait for the preview of a full load of every
// table of db: `terraform plan` of endpoints and a migration_task, which reads
// both catalogs, checks the mapping and renders the DDL of each table.
func (b *bench) planTask(ctx context.Context, db string, tables, runs int) (time.Duration, error) {
	const target = "assess_target"
	if err := b.dst.CreateDatabase(ctx, target); err != nil {
		return 0, err
	}
	tf := filepath.Join(b.work, "tf-plan-task")
	if err := os.MkdirAll(tf, 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(tf, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    migration = { source = "migrationworks/migration" }
  }
}
resource "migration_endpoint" "src" {
  postgres = { host = %q, port = %d, database = %q, username = "postgres", sslmode = "disable" }
}
resource "migration_endpoint" "tgt" {
  postgres = { host = %q, port = %d, database = %q, username = "postgres", sslmode = "disable" }
}
resource "migration_task" "all" {
  name               = "assess"
  source_endpoint_id = migration_endpoint.src.id
  target_endpoint_id = migration_endpoint.tgt.id
  tables             = [{ source = "app.*" }]
}
`, b.src.Host, b.src.Port, db, b.dst.Host, b.dst.Port, target)), 0o600); err != nil {
		return 0, err
	}
	env := b.terraformEnv()
	want := fmt.Sprintf("Full load of %d tables", tables)
	return median(runs, func() error {
		out, err := command(ctx, tf, env, "terraform", "plan", "-no-color", "-input=false")
		if err == nil && !strings.Contains(out, want) {
			err = fmt.Errorf("the plan does not preview %q:\n%s", want, out)
		}
		return err
	})
}

// median runs f runs times and returns the median duration.
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
