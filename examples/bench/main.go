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
//   - The catch-up of change data capture on the same source database:
//     native logical replication (a subscription in sync, disabled while the
//     workload runs, then enabled and timed until its slot has confirmed the
//     source's WAL end) against a migration_task in mode full_load_and_cdc
//     (loaded by a first apply, then timed through the whole `terraform
//     apply` that catches up, start-up included), after the pgbench workload
//     of workload.sql (-cdc-txns transactions of 4 changes). Both copies are
//     verified (digests), the task's slot must have confirmed the WAL end and
//     a following `terraform plan -detailed-exitcode` must find nothing to
//     do. Then again with -cdc-big-txns transactions, to compare the
//     provider's peak memory with the two backlogs. Changes per second of
//     both, their ratio and the peak memory are printed; the subscription is
//     dropped and the task destroyed, and no slot nor publication may remain.
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
	skipFull    bool // seed the source, then measure CDC alone
	cdc         cdcOptions
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 3000000, "orders in the full-load dataset (customers are a sixth); the memory check also loads a third of it")
	flag.BoolVar(&o.quick, "quick", false, "time only the COPY pipe among the peers (skip pgcopydb and logical replication)")
	flag.IntVar(&o.parallelism, "parallelism", 4, "migration_task parallelism")
	flag.IntVar(&o.tables, "tables", 200, "tables in the assessed database (catalog measurement)")
	flag.IntVar(&o.runs, "runs", 5, "repetitions of each catalog measurement; the median is reported")
	flag.BoolVar(&o.skipFull, "skip-fullload", false, "skip the catalog and full-load measurements: seed the source, then measure the CDC catch-up alone")
	flag.IntVar(&o.cdc.txns, "cdc-txns", 20000, "pgbench transactions (4 changes each) of the CDC backlog timed against native logical replication; even")
	flag.IntVar(&o.cdc.bigTxns, "cdc-big-txns", 200000, "transactions of the second CDC backlog, for the memory check; even; 0 skips it")
	flag.IntVar(&o.cdc.rounds, "cdc-rounds", 5, "times the -cdc-txns backlog is measured; the verdict is on the median ratio")
	flag.BoolVar(&o.cdc.onlyNative, "cdc-only-native", false, "time native logical replication's catch-up alone (no migration_task)")
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
	// pgbench runs two clients of half the transactions each.
	if o.cdc.txns < 2 || o.cdc.txns%2 != 0 || o.cdc.bigTxns < 0 || o.cdc.bigTxns%2 != 0 {
		return errors.New("-cdc-txns must be an even number of at least 2, -cdc-big-txns 0 or even")
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
	if o.skipFull {
		fmt.Printf("\n==> seeding the source (%s orders in database %s; catalog and full load skipped)\n", count(o.rows), sourceDB)
		if err := b.seed(ctx, sourceDB, o.rows); err != nil {
			return err
		}
	} else {
		if err := b.catalog(ctx, o.tables, o.runs); err != nil {
			return fmt.Errorf("catalog measurement: %w", err)
		}
		if err := b.fullLoad(ctx, o.rows, o.quick); err != nil {
			return err
		}
	}
	if err := b.cdc(ctx, o.cdc); err != nil {
		return fmt.Errorf("CDC measurement: %w", err)
	}
	return nil
}
