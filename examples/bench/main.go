// Command bench measures the provider against the tools a user would pick
// instead, in one run on this machine, and prints times and ratios (never
// absolute thresholds). Run it with `make bench` from the repository root.
//
// Measured:
//
//   - The assessment step: migration_catalog reading a database of 200
//     tables, through the engine and through `terraform plan`, against
//     `pg_dump --schema-only` of the same database.
//   - The full load of the shop dataset (dataset.sql: customers and orders,
//     3M orders by default) between two throwaway clusters: migration_task
//     through a whole `terraform apply`, against a binary COPY pipe per table,
//     `pgcopydb clone` and native logical replication's initial sync, each
//     into a fresh target database. The copy is verified (row counts and
//     order-independent digests), and the provider's peak resident memory is
//     sampled at the full size and at a third of it.
//
// It exits non-zero only when a step or a verification fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// serverConf matches ../shared/bench/pgenv.sh; testenv already sets
// wal_level = logical, fsync, synchronous_commit and full_page_writes off.
var serverConf = []string{
	"shared_buffers = 512MB",
	"max_wal_size = 8GB",
	"checkpoint_timeout = 30min",
	"fsync = off",
	"synchronous_commit = off",
	"full_page_writes = off",
}

type options struct {
	rows        int  // orders in the full-load dataset
	quick       bool // only the COPY pipe among the peers
	parallelism int  // migration_task parallelism
	tables      int  // tables in the assessed database
	runs        int  // repetitions of each catalog measurement
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 3000000, "orders in the full-load dataset (customers are a sixth); the memory check also loads a third of it")
	flag.BoolVar(&o.quick, "quick", false, "time only the COPY pipe among the peers (skip pgcopydb and logical replication)")
	flag.IntVar(&o.parallelism, "parallelism", 4, "migration_task parallelism")
	flag.IntVar(&o.tables, "tables", 200, "tables in the assessed database (catalog measurement)")
	flag.IntVar(&o.runs, "runs", 5, "repetitions of each catalog measurement; the median is reported")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.rows < 6 {
		return errors.New("-rows must be at least 6 (customers are a sixth of the orders)")
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "examples", "bench", "main.go")); err != nil {
		return errors.New("run the benchmark from the repository root: make bench")
	}
	work, err := os.MkdirTemp("", "migration-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()

	fmt.Println("==> building the provider")
	rc, err := testenv.BuildProvider(ctx, repo, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	fmt.Println("==> starting the source and target clusters")
	src, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{ExtraConf: serverConf})
	if err != nil {
		return err
	}
	defer func() { _ = src.Stop() }()
	dst, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{ExtraConf: serverConf})
	if err != nil {
		return err
	}
	defer func() { _ = dst.Stop() }()
	fmt.Printf("    source on port %d, target on port %d, %d CPUs\n", src.Port, dst.Port, runtime.NumCPU())

	b := &bench{src: src, dst: dst, work: work, cliConfig: rc, parallelism: o.parallelism}
	if err := b.catalog(ctx, o.tables, o.runs); err != nil {
		return fmt.Errorf("catalog measurement: %w", err)
	}
	return b.fullLoad(ctx, o.rows, o.quick)
}
