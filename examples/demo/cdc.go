package main

// The change data capture half of the demo: what the shop writes after the
// load, what terraform says about it, and the proof that both sides agree.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// written is what writeOnSource committed: row changes and transactions.
type written struct {
	changes, transactions int64
}

// writeOnSource plays the shop's application for a moment: new orders, then
// payments and shipments, a cancellation, a customer's new profile, each
// transaction with its line in the (keyless) audit log. It prints one line
// per transaction and returns what the slot should now hold.
func writeOnSource(ctx context.Context, pg *testenv.Postgres) (written, error) {
	var w written
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN("shop"))
	if err != nil {
		return w, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// The throwaway server runs with synchronous_commit = off; an application
	// that waits for its commits to be flushed, as production ones do, makes
	// every change visible to the slot (and counted by the plan) at once.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return w, err
	}
	var order, event, customers int64 // the highest ids, and how many customers
	if err := conn.QueryRow(ctx, `SELECT (SELECT max(id) FROM shop.orders), (SELECT max(id) FROM shop.events), (SELECT count(*) FROM shop.customers)`).
		Scan(&order, &event, &customers); err != nil {
		return w, err
	}
	type stmt struct {
		sql  string
		args []any
	}
	txns := []struct {
		what  string
		stmts []stmt
	}{
		{"250 new orders, a 'buy' event for each", []stmt{
			{`INSERT INTO shop.orders (id, customer_id, status, amount, currency, created_at, lines)
			  SELECT $1::bigint + g, 1 + ($1::bigint + g) % $2::bigint, 'new', 10 + g % 90, 'EUR', now(),
			         jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g % 997, 'qty', 1 + g % 3, 'price', 10 + g % 90))
			  FROM generate_series(1, 250) g`, []any{order, customers}},
			{`INSERT INTO shop.events
			  SELECT $1::bigint + g, timestamptz '2025-12-01' + g * interval '1 second', 'buy', jsonb_build_object('order', $2::bigint + g)
			  FROM generate_series(1, 250) g`, []any{event, order}},
		}},
		{"200 of them paid", []stmt{
			{`UPDATE shop.orders SET status = 'paid' WHERE id BETWEEN $1::bigint + 1 AND $1::bigint + 200`, []any{order}},
		}},
		{"120 of those shipped", []stmt{
			{`UPDATE shop.orders SET status = 'shipped', shipped_at = now() WHERE id BETWEEN $1::bigint + 1 AND $1::bigint + 120`, []any{order}},
		}},
		{"5 unpaid orders cancelled and deleted, audit lines older than 16 h purged", []stmt{
			{`DELETE FROM shop.orders WHERE id BETWEEN $1::bigint + 246 AND $1::bigint + 250`, []any{order}},
			{`DELETE FROM shop.audit_log WHERE at < now() - interval '16 hours'`, nil},
		}},
		{"customer 42 changes e-mail and profile", []stmt{
			{`UPDATE shop.customers SET email = 'c42@example.org', tags = array_append(tags, 'vip'),
			         profile = profile || '{"tier": 3, "newsletter": true}' WHERE id = 42`, nil},
		}},
	}
	started := time.Now()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "    TX\tWHAT\tROWS")
	for i, tx := range txns {
		var rows int64
		err := pgx.BeginFunc(ctx, conn, func(t pgx.Tx) error {
			for _, s := range append(tx.stmts, stmt{`INSERT INTO shop.audit_log VALUES (now(), 'shop-app', $1)`, []any{tx.what}}) {
				tag, err := t.Exec(ctx, s.sql, s.args...)
				if err != nil {
					return err
				}
				rows += tag.RowsAffected()
			}
			return nil
		})
		if err != nil {
			return w, fmt.Errorf("writing on the source (%s): %w", tx.what, err)
		}
		w.changes += rows
		w.transactions++
		_, _ = fmt.Fprintf(tw, "    %d\t%s\t%d\n", i+1, tx.what, rows)
	}
	if err := tw.Flush(); err != nil {
		return w, err
	}
	fmt.Printf("    %d rows changed in %d transactions (each also logs a line in shop.audit_log), in %s\n",
		w.changes, w.transactions, time.Since(started).Round(time.Millisecond))
	return w, nil
}

var (
	catchUpRE = regexp.MustCompile(`^Change data capture: CATCH-UP: (about )?(\d+) changes in (about )?(\d+) transactions are pending`)
	appliedRE = regexp.MustCompile(`^Change data capture: (\d+) changes in (\d+) transactions applied`)
)

// planCatchUp runs the plan that must announce the catch-up of w, and shows
// the lines of it that say so.
func planCatchUp(ctx context.Context, dir string, env []string, pg *testenv.Postgres, w written) error {
	if err := slotIdle(ctx, pg); err != nil {
		return err
	}
	out, code, err := terraformCode(ctx, dir, env, "plan", "-detailed-exitcode")
	if err != nil {
		return err
	}
	if code != 2 {
		return fmt.Errorf("terraform plan -detailed-exitcode exited %d, want 2 (changes to apply):\n%s", code, out)
	}
	show(out, "# migration_task.shop will be updated in-place", `~ resource "migration_task" "shop"`, "~ pending_changes", "Plan:")
	fmt.Println("    ...")
	para, m := paragraph(out, catchUpRE)
	if m == nil {
		return fmt.Errorf("the plan's preview does not announce the catch-up:\n%s", out)
	}
	fmt.Println(indent(para, "    "))
	fmt.Printf("    exit code %d: changes to apply\n", code)
	if m[1] != "" || m[2] != strconv.FormatInt(w.changes, 10) || m[4] != strconv.FormatInt(w.transactions, 10) {
		return fmt.Errorf("the plan announces %s%s changes in %s transactions, the demo wrote %d in %d", m[1], m[2], m[4], w.changes, w.transactions)
	}
	return nil
}

// slotIdle waits until no session holds the task's replication slot. The
// walsender of the apply that just ended can take a moment to go away, and
// a plan that finds the slot in use (perhaps by another apply) does not
// count the changes waiting in it.
func slotIdle(ctx context.Context, pg *testenv.Postgres) error {
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN("shop"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var active bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'migration_shop' AND active)`).Scan(&active); err != nil {
			return err
		}
		if !active {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("replication slot migration_shop is still in use 10 s after the apply")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// applyCatchUp runs the apply that replays w and shows what it reports.
func applyCatchUp(ctx context.Context, dir string, env []string, w written) error {
	started := time.Now()
	out, code, err := terraformCode(ctx, dir, env, "apply", "-auto-approve")
	if err != nil {
		return err
	}
	took := time.Since(started)
	if code != 0 {
		return fmt.Errorf("terraform apply exited %d:\n%s", code, out)
	}
	show(out, "Apply complete!")
	para, m := paragraph(out, appliedRE)
	if m == nil {
		return fmt.Errorf("the apply does not report the catch-up:\n%s", out)
	}
	fmt.Println(indent(para, "    "))
	if m[1] != strconv.FormatInt(w.changes, 10) || m[2] != strconv.FormatInt(w.transactions, 10) {
		return fmt.Errorf("the apply replayed %s changes in %s transactions, the demo wrote %d in %d", m[1], m[2], w.changes, w.transactions)
	}
	fmt.Printf("    %s changes in %s transactions replayed; terraform apply took %s in all (refresh, plan and apply)\n",
		m[1], m[2], took.Round(100*time.Millisecond))
	return nil
}

// compareSides prints, per table, the rows and an order-independent digest
// of both sides, and fails unless they are equal.
func compareSides(ctx context.Context, pg *testenv.Postgres) error {
	tables, err := followedTables(ctx, pg)
	if err != nil {
		return err
	}
	// Every table of both sides at once: the digest of the orders dominates.
	src, tgt := make([]tableDigest, len(tables)), make([]tableDigest, len(tables))
	errs := make([]error, 2*len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		for side, db := range []string{"shop", "shop_next"} {
			d := &src[i]
			if side == 1 {
				d = &tgt[i]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				*d, errs[2*i+side] = digest(ctx, pg, db, t)
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "    TABLE\tSOURCE ROWS\tTARGET ROWS\tSOURCE DIGEST\tTARGET DIGEST\tRESULT")
	var differ []string
	for i, t := range tables {
		verdict := "equal"
		if src[i] != tgt[i] {
			verdict = "DIFFERENT"
			differ = append(differ, t)
		}
		_, _ = fmt.Fprintf(tw, "    %s\t%d\t%d\t%.12s\t%.12s\t%s\n", t, src[i].rows, tgt[i].rows, src[i].md5, tgt[i].md5, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(differ) > 0 {
		return fmt.Errorf("source and target differ: %s", strings.Join(differ, ", "))
	}
	return nil
}

// followedTables are the source's tables the task follows: a partitioned
// table once, as its root.
func followedTables(ctx context.Context, pg *testenv.Postgres) ([]string, error) {
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN("shop"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'shop' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

type tableDigest struct {
	rows int64
	md5  string
}

// digest is a table's row count and the md5 of its rows' md5s, sorted: equal
// on both sides whatever the physical order.
func digest(ctx context.Context, pg *testenv.Postgres, db, table string) (tableDigest, error) {
	var d tableDigest
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN(db))
	if err != nil {
		return d, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// Room to sort the rows' md5s in memory.
	if _, err := conn.Exec(ctx, "SET work_mem = '64MB'"); err != nil {
		return d, err
	}
	err = conn.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') FROM `+table+` t`).Scan(&d.rows, &d.md5)
	if err != nil {
		return d, fmt.Errorf("digest of %s in %s: %w", table, db, err)
	}
	return d, nil
}

// destroy runs terraform destroy and checks that the source's replication
// slot and publication are gone with it.
func destroy(ctx context.Context, dir string, env []string, pg *testenv.Postgres) error {
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN("shop"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	before, err := slotsAndPublications(ctx, conn)
	if err != nil {
		return err
	}
	out, code, err := terraformCode(ctx, dir, env, "destroy", "-auto-approve")
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("terraform destroy exited %d:\n%s", code, out)
	}
	show(out, "migration_task.shop: Destruction complete", "Destroy complete!")
	after, err := slotsAndPublications(ctx, conn)
	if err != nil {
		return err
	}
	fmt.Printf("    on the source before: %s\n    on the source after:  %s\n", before, after)
	if after != "replication slots none, publications none" {
		return errors.New("terraform destroy left a replication slot or publication on the source")
	}
	return nil
}

func slotsAndPublications(ctx context.Context, conn *pgx.Conn) (string, error) {
	var slots, pubs []string
	err := conn.QueryRow(ctx, `SELECT ARRAY(SELECT slot_name::text FROM pg_replication_slots ORDER BY 1), ARRAY(SELECT pubname::text FROM pg_publication ORDER BY 1)`).
		Scan(&slots, &pubs)
	return fmt.Sprintf("replication slots %s, publications %s", none(slots), none(pubs)), err
}

func none(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// terraformCode runs the CLI in dir without colors and returns its output,
// stdout and stderr together, and its exit code.
func terraformCode(ctx context.Context, dir string, env []string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, "terraform", append(args, "-no-color")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		return string(out), exit.ExitCode(), nil
	case err != nil:
		return string(out), -1, fmt.Errorf("terraform %s: %w", strings.Join(args, " "), err)
	}
	return string(out), 0, nil
}

// show prints, indented, the lines of out that start (after indentation)
// with one of prefixes.
func show(out string, prefixes ...string) {
	for _, l := range strings.Split(out, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(strings.TrimSpace(l), p) {
				fmt.Println("    " + l)
				break
			}
		}
	}
}

// paragraph finds the paragraph (lines neither empty nor indented) of
// terraform's output that matches re once unwrapped, and returns it as
// terraform wrapped it, with the submatches.
func paragraph(out string, re *regexp.Regexp) (string, []string) {
	var para []string
	for _, l := range append(strings.Split(out, "\n"), "") {
		if l != "" && l[0] != ' ' {
			para = append(para, l)
			continue
		}
		if m := re.FindStringSubmatch(strings.Join(para, " ")); m != nil {
			return strings.Join(para, "\n"), m
		}
		para = para[:0]
	}
	return "", nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
