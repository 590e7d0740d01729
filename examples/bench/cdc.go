package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// workload is ../shared/bench/workload.sql: one pgbench transaction of four
// changes on the shop dataset (an order shipped, an order placed, a customer
// touched, an order deleted). Its ids assume the 3M orders and 500k
// customers of the default -rows: with fewer rows, some of its statements
// find nothing to change (the source's statistics tell how many did).
//
//go:embed workload.sql
var workload string

const (
	cdcTaskName    = "bench_cdc"     // the task's slot and publication are both migration_bench_cdc
	cdcPub         = "bench_cdc_pub" // native logical replication's publication,
	cdcSub         = "bench_cdc_sub" // and subscription, whose slot on the source has its name
	nativeCDCDB    = "t_native_cdc"
	oursCDCDB      = "t_ours_cdc"
	changesPerTxn  = 4   // statements of workload.sql
	cdcRatioTarget = 1.0 // ours / native, in changes per second
	// Peak RSS at the big backlog is bounded when it is within 10% of the
	// small one's, or 8 MiB, whichever is larger: the run-to-run noise of a
	// Go process of about 40 MiB.
	memBoundNoise    = 0.10
	memBoundNoiseMiB = 8
	// Limits of the waits that have no natural end: a catch-up that stalls
	// fails the bench rather than hanging it.
	syncLimit    = 30 * time.Minute
	catchUpLimit = 30 * time.Minute
	stopLimit    = time.Minute
)

// cdcOptions are the flags of the CDC measurement.
type cdcOptions struct {
	txns       int  // transactions of the backlog timed against the target rate
	bigTxns    int  // transactions of the second backlog, for the memory check; 0 skips it
	rounds     int  // times the o.txns backlog is measured; the median ratio is the verdict
	onlyNative bool // measure native logical replication alone
}

// backlog is one workload run and its catch-up by both.
type backlog struct {
	txns     int
	changed  int64         // rows the workload changed, from the source's statistics
	workload time.Duration // pgbench
	native   time.Duration // from ENABLE until the subscription's slot confirmed the WAL end
	ours     time.Duration // terraform apply, start-up included; 0 when not measured
	mem      memPeak       // the provider's, during that apply
}

// changes is the backlog in changes, as the issue counts them.
func (l backlog) changes() int { return l.txns * changesPerTxn }

// rate is changes per second.
func rate(changes int, d time.Duration) float64 { return float64(changes) / d.Seconds() }

// cdc times the catch-up of change data capture on the source database the
// full load read: a native logical replication subscription and a
// migration_task in mode full_load_and_cdc are brought in sync with it, a
// pgbench workload of o.txns transactions runs while neither follows it, then
// each catches up in turn: the subscription re-enabled until its slot has
// confirmed the WAL end, and the task by one `terraform apply`. Both copies
// are verified against the source, then the same again with o.bigTxns
// transactions to see whether the provider's memory follows the backlog.
func (b *bench) cdc(ctx context.Context, o cdcOptions) error {
	fmt.Printf("\n==> CDC catch-up on %s: native logical replication against migration_task (mode full_load_and_cdc)\n", sourceDB)
	script := filepath.Join(b.work, "workload.sql")
	if err := os.WriteFile(script, []byte(workload), 0o600); err != nil {
		return err
	}
	loadBefore := loadAverage()
	if !o.onlyNative {
		pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{ExtraConf: serverConf})
		if err != nil {
			return err
		}
		b.oursDst = pg
		defer func() { _ = pg.Stop(); b.oursDst = nil }()
		fmt.Printf("    each copy has a target cluster of its own: native's on port %d, migration_task's on port %d\n", b.dst.Port, pg.Port)
	}

	native, err := b.startNative(ctx)
	if err != nil {
		return fmt.Errorf("native logical replication: %w", err)
	}
	// On failure, do not leave a subscription streaming into the next
	// step; the task's slot goes with the source cluster, which is thrown
	// away on exit.
	defer native.close(ctx)
	var tf string
	if o.onlyNative {
		fmt.Println("    migration_task: skipped (-cdc-only-native)")
	} else if tf, err = b.startOurs(ctx); err != nil {
		return fmt.Errorf("migration_task, first apply: %w", err)
	}
	targets := []string{nativeCDCDB}
	if tf != "" {
		targets = append(targets, oursCDCDB)
	}
	if err := b.verifyCDC(ctx, targets); err != nil {
		return err
	}

	// The small backlog takes about a second each way, where the
	// machine's noise weighs most: it is measured several times and
	// judged by the median.
	var sizes []int
	for range max(o.rounds, 1) {
		sizes = append(sizes, o.txns)
	}
	if o.bigTxns > 0 {
		sizes = append(sizes, o.bigTxns)
	}
	var backlogs []backlog
	for i, n := range sizes {
		// Whoever goes second may find the machine busier (the first
		// one's writeback, caches): the order alternates from round to round.
		l, err := b.catchUp(ctx, script, native, tf, n, i%2 == 1)
		if err != nil {
			return fmt.Errorf("catch-up of %s transactions: %w", count(n), err)
		}
		backlogs = append(backlogs, l)
	}

	cleanupErr := b.cdcCleanup(ctx, native, tf)
	cdcReport(backlogs, o)
	fmt.Printf("load average (1 min) before the CDC measurement: %s, after it: %s, on %d CPUs\n", loadBefore, loadAverage(), runtime.NumCPU())
	return cleanupErr
}

// nativeSub is native logical replication's subscriber: cdcSub in
// nativeCDCDB, over one connection to that database.
type nativeSub struct {
	b          *bench
	conn       *pgx.Conn // nil once dropped
	disabledAt time.Time
}

// startNative creates nativeCDCDB with the shop schema, publishes shop on the
// source and subscribes to it (copy_data true), waits until every table is
// ready, then disables the subscription: its slot holds what comes next.
func (b *bench) startNative(ctx context.Context) (*nativeSub, error) {
	if err := b.targetWithSchema(ctx, nativeCDCDB); err != nil {
		return nil, err
	}
	if err := b.src.Exec(ctx, sourceDB, "DROP PUBLICATION IF EXISTS "+cdcPub+"; CREATE PUBLICATION "+cdcPub+" FOR TABLES IN SCHEMA shop"); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, b.dst.SuperuserDSN(nativeCDCDB))
	if err != nil {
		return nil, err
	}
	n := &nativeSub{b: b, conn: conn}
	t0 := time.Now()
	_, err = conn.Exec(ctx, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION 'host=%s port=%d user=postgres dbname=%s' PUBLICATION %s WITH (copy_data = true)",
		cdcSub, b.src.Host, b.src.Port, sourceDB, cdcPub))
	if err == nil {
		err = poll(ctx, 200*time.Millisecond, syncLimit, "initial sync of "+cdcSub, func() (bool, error) {
			return subscriptionReady(ctx, conn, cdcSub)
		})
	}
	if err == nil {
		err = n.disable(ctx)
	}
	if err != nil {
		n.close(ctx)
		return nil, err
	}
	fmt.Printf("    native logical replication: %s subscribed to %s, initial sync in %.1f s, then disabled\n",
		nativeCDCDB, cdcPub, time.Since(t0).Seconds())
	return n, nil
}

// disable stops the subscription and waits until its slot on the source is
// inactive: no walsender reads it until it is enabled again.
func (n *nativeSub) disable(ctx context.Context) error {
	if _, err := n.conn.Exec(ctx, "ALTER SUBSCRIPTION "+cdcSub+" DISABLE"); err != nil {
		return fmt.Errorf("disabling %s: %w", cdcSub, err)
	}
	n.disabledAt = time.Now()
	return poll(ctx, 50*time.Millisecond, stopLimit, "slot "+cdcSub+" inactive", func() (bool, error) {
		active, err := scalar(ctx, n.b.src, "postgres", "SELECT coalesce(bool_or(active), false)::text FROM pg_replication_slots WHERE slot_name = $1", cdcSub)
		return active == "false", err
	})
}

// catchUp enables the subscription and times it until its slot on the
// source has confirmed end (polled every 100 ms, as anchors-cdc.sh does),
// then disables it again (untimed).
//
// The launcher starts apply workers at most once per
// wal_retrieve_retry_interval (5 s): an ENABLE sooner after the last start
// would be timed waiting for it. With a small backlog the workload can be
// that short, so the gap is waited out first, untimed.
func (n *nativeSub) catchUp(ctx context.Context, end string) (time.Duration, error) {
	interval, err := scalar(ctx, n.b.dst, "postgres", "SELECT setting FROM pg_settings WHERE name = 'wal_retrieve_retry_interval'") // ms
	if err != nil {
		return 0, err
	}
	ms, err := strconv.Atoi(interval)
	if err != nil {
		return 0, fmt.Errorf("wal_retrieve_retry_interval %q: %w", interval, err)
	}
	if wait := time.Duration(ms)*time.Millisecond - time.Since(n.disabledAt); wait > 0 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait + 100*time.Millisecond):
		}
	}
	src, err := pgx.Connect(ctx, n.b.src.SuperuserDSN("postgres"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = src.Close(context.WithoutCancel(ctx)) }()
	took, err := n.b.measure(ctx, func() error {
		if _, err := n.conn.Exec(ctx, "ALTER SUBSCRIPTION "+cdcSub+" ENABLE"); err != nil {
			return fmt.Errorf("enabling %s: %w", cdcSub, err)
		}
		return poll(ctx, 100*time.Millisecond, catchUpLimit, cdcSub+" confirming "+end, func() (bool, error) {
			var reached bool
			err := src.QueryRow(ctx, "SELECT coalesce(bool_and(confirmed_flush_lsn >= $2::pg_lsn), false) FROM pg_replication_slots WHERE slot_name = $1",
				cdcSub, end).Scan(&reached)
			return reached, err
		})
	})
	if err != nil {
		return 0, err
	}
	return took, n.disable(ctx)
}

// drop drops the subscription (and with it its slot on the source) and the
// publication.
func (n *nativeSub) drop(ctx context.Context) error {
	if n.conn == nil {
		return nil
	}
	_, err := n.conn.Exec(ctx, "DROP SUBSCRIPTION IF EXISTS "+cdcSub)
	if err != nil {
		err = fmt.Errorf("dropping %s: %w", cdcSub, err)
	}
	_ = n.conn.Close(context.WithoutCancel(ctx))
	n.conn = nil
	if pubErr := n.b.src.Exec(ctx, sourceDB, "DROP PUBLICATION IF EXISTS "+cdcPub); err == nil {
		err = pubErr
	}
	return err
}

// close drops what drop would, even after ctx ended, ignoring errors: for
// the paths that already fail.
func (n *nativeSub) close(ctx context.Context) {
	_ = n.drop(context.WithoutCancel(ctx))
}

// startOurs creates oursCDCDB empty and applies a full_load_and_cdc task
// into it once: the full load from the snapshot of the slot the task makes
// (timed for information only). The slot's position is then the load's cut.
// It returns the task's Terraform directory.
func (b *bench) startOurs(ctx context.Context) (string, error) {
	if err := freshDatabase(ctx, b.target(oursCDCDB), oursCDCDB); err != nil {
		return "", err
	}
	dir := filepath.Join(b.work, "tf-cdc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(b.taskConfig(cdcTaskName, "full_load_and_cdc", sourceDB, oursCDCDB)), 0o600); err != nil {
		return "", err
	}
	took, mem, err := b.apply(ctx, dir)
	if err != nil {
		return "", err
	}
	slot := "migration_" + cdcTaskName
	lsn, err := scalar(ctx, b.src, "postgres", "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("no replication slot %s on the source after the first apply", slot)
		}
		return "", err
	}
	fmt.Printf("    migration_task %s: first apply (full load, for information) %.2f s, provider peak RSS %.1f MiB; slot %s at %s\n",
		cdcTaskName, took.Seconds(), mem.MiB(), slot, lsn)
	b.printTaskState(ctx, dir)
	return dir, nil
}

// catchUp runs txns transactions of the workload on the source while
// neither copy follows it, then times native logical replication's catch-up
// and, when tf is set, the task's (one after the other, never alongside;
// the task's first when oursFirst), and verifies both copies. Each timed
// catch-up starts after a checkpoint of the clusters (bench.checkpoint), so
// that neither pays for writing out what the workload or the other left dirty.
func (b *bench) catchUp(ctx context.Context, script string, native *nativeSub, tf string, txns int, oursFirst bool) (backlog, error) {
	l := backlog{txns: txns}
	fmt.Printf("\n    backlog of %s transactions × %d changes:\n", count(txns), changesPerTxn)
	before, err := b.rowsChanged(ctx)
	if err != nil {
		return l, err
	}
	if l.workload, err = b.runWorkload(ctx, script, txns); err != nil {
		return l, err
	}
	after, err := b.rowsChanged(ctx)
	if err != nil {
		return l, err
	}
	l.changed = after - before
	end, err := scalar(ctx, b.src, sourceDB, "SELECT pg_current_wal_lsn()::text")
	if err != nil {
		return l, err
	}
	held, err := scalar(ctx, b.src, "postgres", "SELECT string_agg(format('%s %s MiB', slot_name, "+
		"round(pg_wal_lsn_diff($1::pg_lsn, confirmed_flush_lsn) / 1048576.0, 1)), ', ' ORDER BY slot_name) FROM pg_replication_slots", end)
	if err != nil {
		return l, err
	}
	fmt.Printf("    pgbench: %s transactions in %.1f s (%.0f/s), %d rows changed (source statistics; %d nominal); WAL end %s\n",
		count(txns), l.workload.Seconds(), float64(txns)/l.workload.Seconds(), l.changed, l.changes(), end)
	fmt.Printf("    WAL held behind each slot: %s\n", held)

	runNative := func() error {
		if err := b.checkpoint(ctx); err != nil {
			return err
		}
		if l.native, err = native.catchUp(ctx, end); err != nil {
			return fmt.Errorf("native logical replication: %w", err)
		}
		fmt.Printf("    native logical replication: caught up in %.2f s, %.0f changes/s\n", l.native.Seconds(), rate(l.changes(), l.native))
		return nil
	}
	runOurs := func() error {
		if l.ours, l.mem, err = b.apply(ctx, tf); err != nil {
			return fmt.Errorf("migration_task: %w", err)
		}
		fmt.Printf("    migration_task: terraform apply caught up in %.2f s, %.0f changes/s, provider peak RSS %.1f MiB (each provider process, in start order: %s)\n",
			l.ours.Seconds(), rate(l.changes(), l.ours), l.mem.MiB(), l.mem)
		if err := b.checkOurSlot(ctx, end); err != nil {
			return err
		}
		b.printTaskState(ctx, tf)
		return b.checkPlanEmpty(ctx, tf)
	}
	runs := []func() error{runNative}
	targets := []string{nativeCDCDB}
	switch {
	case tf != "" && oursFirst:
		runs = []func() error{runOurs, runNative}
		targets = append(targets, oursCDCDB)
	case tf != "":
		runs = append(runs, runOurs)
		targets = append(targets, oursCDCDB)
	}
	for _, run := range runs {
		if err := run(); err != nil {
			return l, err
		}
	}
	return l, b.verifyCDC(ctx, targets)
}

// runWorkload runs txns transactions of script on the source: two clients
// on two threads, as anchors-cdc.sh does (which passes `-d`, pgbench's
// debug switch, before the database name; here the name stands alone).
func (b *bench) runWorkload(ctx context.Context, script string, txns int) (time.Duration, error) {
	t0 := time.Now()
	out, err := command(ctx, b.work, os.Environ(), "pgbench", "-h", b.src.Host, "-p", strconv.Itoa(b.src.Port), "-U", "postgres",
		"-n", "-c", "2", "-j", "2", "-t", strconv.Itoa(txns/2), "-f", script, sourceDB)
	took := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, lastLines(out, 20))
	}
	if want := fmt.Sprintf("number of transactions actually processed: %d/%d", txns, txns); !strings.Contains(out, want) {
		return 0, fmt.Errorf("pgbench did not process every transaction (want %q):\n%s", want, lastLines(out, 20))
	}
	return took, nil
}

// rowsChanged is the source's count of rows inserted, updated and deleted in
// the shop schema since it started, once pgbench's sessions have ended (a
// session reports its counts as it exits).
func (b *bench) rowsChanged(ctx context.Context) (int64, error) {
	err := poll(ctx, 50*time.Millisecond, stopLimit, "pgbench sessions ended", func() (bool, error) {
		n, err := scalar(ctx, b.src, "postgres", "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'pgbench'")
		return n == "0", err
	})
	if err != nil {
		return 0, err
	}
	s, err := scalar(ctx, b.src, sourceDB, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::text FROM pg_stat_user_tables WHERE schemaname = 'shop'")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// checkOurSlot fails unless the task's slot has confirmed end: the apply
// must have caught up to the WAL end it read at its start, after pgbench.
func (b *bench) checkOurSlot(ctx context.Context, end string) error {
	slot := "migration_" + cdcTaskName
	got, err := scalar(ctx, b.src, "postgres", "SELECT format('%s %s', confirmed_flush_lsn, (confirmed_flush_lsn >= $2::pg_lsn)::text) FROM pg_replication_slots WHERE slot_name = $1", slot, end)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("verification FAILED: no replication slot %s on the source after the catch-up", slot)
	}
	if err != nil {
		return err
	}
	lsn, reached, _ := strings.Cut(got, " ")
	if reached != "true" {
		return fmt.Errorf("verification FAILED: slot %s confirmed %s after the catch-up, short of the workload's end %s", slot, lsn, end)
	}
	fmt.Printf("    slot %s confirmed %s (workload's end %s)\n", slot, lsn, end)
	return nil
}

// checkPlanEmpty runs `terraform plan -detailed-exitcode` in dir: after a
// catch-up, nothing may be pending (exit 0).
func (b *bench) checkPlanEmpty(ctx context.Context, dir string) error {
	out, err := command(ctx, dir, b.terraformEnv(), "terraform", "plan", "-no-color", "-input=false", "-detailed-exitcode")
	var exit *exec.ExitError
	switch {
	case err == nil:
		fmt.Println("    terraform plan -detailed-exitcode after the catch-up: exit 0, no changes")
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return fmt.Errorf("verification FAILED: terraform plan -detailed-exitcode after the catch-up: exit 2, changes pending:\n%s", lastLines(out, 40))
	default:
		return fmt.Errorf("terraform plan: %w\n%s", err, lastLines(out, 40))
	}
}

// printTaskState prints the migration_task's attributes about its progress
// through the WAL, as `terraform show -json` has them (informational: it
// prints what it finds and fails on nothing).
func (b *bench) printTaskState(ctx context.Context, dir string) {
	cmd := exec.CommandContext(ctx, "terraform", "show", "-json", "-no-color")
	cmd.Dir, cmd.Env = dir, b.terraformEnv()
	out, err := cmd.Output()
	if err != nil {
		return
	}
	var show struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Type   string         `json:"type"`
					Values map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber() // byte counts print whole
	if dec.Decode(&show) != nil {
		return
	}
	for _, r := range show.Values.RootModule.Resources {
		if r.Type != "migration_task" {
			continue
		}
		var attrs []string
		for k, v := range r.Values {
			if v == nil || v == "" {
				continue
			}
			if k == "phase" || k == "last_error" || strings.Contains(k, "lsn") || strings.Contains(k, "lag") ||
				strings.Contains(k, "wal") || strings.Contains(k, "slot") || strings.Contains(k, "change") {
				attrs = append(attrs, fmt.Sprintf("%s = %v", k, v))
			}
		}
		slices.Sort(attrs)
		if len(attrs) > 0 {
			fmt.Printf("    task state: %s\n", strings.Join(attrs, ", "))
		}
	}
}

// verifyCDC compares the digests of shopTables in each of the target
// databases with the source's.
func (b *bench) verifyCDC(ctx context.Context, dbs []string) error {
	want, err := b.digests(ctx, b.src, sourceDB)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		got, err := b.digests(ctx, b.target(db), db)
		if err != nil {
			return fmt.Errorf("verification FAILED: reading %s: %w", db, err)
		}
		for i, t := range shopTables {
			if got[i] != want[i] {
				return fmt.Errorf("verification FAILED: %s in %s: digest %s on the target, %s on the source", t, db, got[i], want[i])
			}
		}
	}
	fmt.Printf("    verified: digests of %s in %s equal the source's\n", strings.Join(shopTables, " and "), strings.Join(dbs, " and "))
	return nil
}

// cdcCleanup drops the subscription and its publication, destroys the task
// (which drops its slot and publication), then fails if any replication
// slot or publication is left on the source.
func (b *bench) cdcCleanup(ctx context.Context, native *nativeSub, tf string) error {
	fmt.Println("\n==> CDC clean-up")
	if err := native.drop(ctx); err != nil {
		return err
	}
	fmt.Printf("    dropped subscription %s and publication %s\n", cdcSub, cdcPub)
	if tf != "" {
		out, err := command(ctx, tf, b.terraformEnv(), "terraform", "destroy", "-auto-approve", "-no-color", "-input=false")
		if err != nil {
			return fmt.Errorf("terraform destroy: %w\n%s", err, lastLines(out, 40))
		}
		fmt.Println("    terraform destroy: done")
	}
	slots, err := scalar(ctx, b.src, "postgres", "SELECT string_agg(slot_name, ', ' ORDER BY slot_name) FROM pg_replication_slots")
	if err != nil {
		return err
	}
	pubs, err := scalar(ctx, b.src, sourceDB, "SELECT string_agg(pubname, ', ' ORDER BY pubname) FROM pg_publication")
	if err != nil {
		return err
	}
	fmt.Printf("    left on the source: replication slots: %s; publications in %s: %s\n", orNone(slots), sourceDB, orNone(pubs))
	if slots != "" || pubs != "" {
		return fmt.Errorf("clean-up FAILED: replication slots %q and publications %q remain on the source", slots, pubs)
	}
	for _, db := range []string{nativeCDCDB, oursCDCDB} {
		if err := dropDatabase(ctx, b.target(db), db); err != nil {
			return err
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// cdcReport prints the final table: each backlog's catch-up rate for both,
// the ratio against the target, and the provider's peak memory at each
// backlog against the small one's.
func cdcReport(ls []backlog, o cdcOptions) {
	fmt.Printf("\n==> CDC catch-up of %s, one run; changes = transactions × %d (workload.sql); ours includes terraform's start-up, refresh and plan\n",
		sourceDB, changesPerTxn)
	fmt.Printf("%-28s %10s %12s %10s %12s %12s %10s\n", "backlog", "native s", "native chg/s", "ours s", "ours chg/s", "ours/native", "peak MiB")
	for _, l := range ls {
		name := fmt.Sprintf("%s txns, %s changes", count(l.txns), count(l.changes()))
		if l.ours == 0 {
			fmt.Printf("%-28s %10.2f %12.0f %10s %12s %12s %10s\n", name, l.native.Seconds(), rate(l.changes(), l.native), "-", "-", "-", "-")
			continue
		}
		fmt.Printf("%-28s %10.2f %12.0f %10.2f %12.0f %12.2f %10.1f\n", name, l.native.Seconds(), rate(l.changes(), l.native),
			l.ours.Seconds(), rate(l.changes(), l.ours), l.native.Seconds()/l.ours.Seconds(), l.mem.MiB())
	}
	if o.onlyNative {
		fmt.Println("\nmigration_task not measured (-cdc-only-native)")
		return
	}
	fmt.Println()
	// Rounds of one backlog size are judged by their median ratio.
	bySize := map[int][]float64{}
	var order []int
	for _, l := range ls {
		if _, ok := bySize[l.txns]; !ok {
			order = append(order, l.txns)
		}
		bySize[l.txns] = append(bySize[l.txns], l.native.Seconds()/l.ours.Seconds())
	}
	for _, n := range order {
		ratios := bySize[n]
		sorted := slices.Sorted(slices.Values(ratios))
		median := sorted[len(sorted)/2]
		if len(sorted)%2 == 0 {
			median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
		}
		rounds := ""
		if len(ratios) > 1 {
			parts := make([]string, len(ratios))
			for i, r := range ratios {
				parts[i] = fmt.Sprintf("%.2f", r)
			}
			rounds = fmt.Sprintf(", median of %d rounds: %s", len(ratios), strings.Join(parts, ", "))
		}
		fmt.Printf("catch-up rate ours / native at %s transactions: %.2f%s (target ≥ %.2f: %s)\n", count(n), median, rounds, cdcRatioTarget, verdict(median >= cdcRatioTarget))
	}
	// Memory: the small backlog's highest peak against the big one's.
	var small, big backlog
	for _, l := range ls {
		if l.txns == ls[0].txns && l.mem.MiB() >= small.mem.MiB() {
			small = l
		}
		if l.txns != ls[0].txns {
			big = l
		}
	}
	if big.txns == 0 {
		fmt.Println("peak RSS at a bigger backlog: not measured (-cdc-big-txns 0)")
		return
	}
	slack := max(small.mem.MiB()*memBoundNoise, memBoundNoiseMiB)
	fmt.Printf("peak RSS during the catch-up: %.1f MiB at %s transactions, %.1f MiB at %s, %+.1f MiB "+
		"(bounded by the batch, not the backlog: within %.1f MiB, the larger of %.0f%% and %d MiB: %s)\n",
		small.mem.MiB(), count(small.txns), big.mem.MiB(), count(big.txns), big.mem.MiB()-small.mem.MiB(),
		slack, memBoundNoise*100, memBoundNoiseMiB, verdict(big.mem.MiB() <= small.mem.MiB()+slack))
}

// poll calls done every interval until it reports true or fails; it gives
// up when ctx ends or after limit, naming what it waited for.
func poll(ctx context.Context, every, limit time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// subscriptionReady reports whether every table of subscription sub is in
// state ready.
func subscriptionReady(ctx context.Context, conn *pgx.Conn, sub string) (bool, error) {
	var notReady, total int
	err := conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE srsubstate <> 'r'), count(*) FROM pg_subscription_rel r "+
		"JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1", sub).Scan(&notReady, &total)
	return err == nil && notReady == 0 && total == len(shopTables), err
}
