package cdc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// firstNormalOID is PostgreSQL's FirstNormalObjectId: OIDs below it are
// built in and mean the same type on every server, so a source column's
// type OID can be named on the target.
const firstNormalOID = 16384

// Applier writes source transactions to a PostgreSQL target exactly once for one task.
type Applier struct {
	tgt    *pgxpool.Pool
	task   string
	tables map[relName]*applyTable // by source schema and name
	// order is the plan's table order; flushes follow it so referenced
	// tables are written before the tables referencing them.
	order []*applyTable
	// ready is set once _migration.cdc is known to exist.
	ready atomic.Bool
	// complete is set once every target table is known to have every
	// planned column (see addPlannedColumns).
	complete atomic.Bool
	// Parts is how many target transactions may apply one batch at once
	// (applyParallel); 0 or 1 applies every batch in one transaction.
	Parts int
	// replica is set when an apply could write as a replica; safe is what
	// parallelSafe found, once known.
	replica atomic.Bool
	safe    *bool
	// partsLeft is set while parts of an earlier batch are known to be
	// ahead of the checkpoint: batches are then applied whole.
	partsLeft atomic.Bool
	// parallelBatches counts batches applied in parts (for tests).
	parallelBatches atomic.Int64
}

// relName is a source table's schema and name.
type relName struct{ schema, name string }

// applyTable is what the plan says about one table.
type applyTable struct {
	source  string // schema.name, for messages
	target  string // target schema.name, for messages
	ident   string // quoted target name
	cols    []applyCol
	key     []int // indexes into cols; empty for a keyless table
	planned map[string]bool
	// err is set when the plan cannot be applied by CDC (a key column not
	// copied); it is returned when the table gets a change.
	err error
	// partPos are the key's positions among the columns of the Relation
	// partOf last saw (partOf), partAll whether it has only planned columns.
	partOf  *Column
	partPos []int
	partAll bool
}

// applyCol is one copied column.
type applyCol struct {
	source  string // source column name
	srcType string // source type as format_type prints it
	tgtType string // target type, as planned
	target  string // target column name
	expr    string // SQL over the quoted source column giving the target value
}

// NewApplier maps source tables to the plan's tables (by schema.name of Table.Source). Changes to tables not in the plan are skipped.
func NewApplier(tgt *pgxpool.Pool, task string, p *plan.Plan) *Applier {
	a := &Applier{tgt: tgt, task: task, tables: map[relName]*applyTable{}}
	if p == nil {
		return a
	}
	for _, t := range p.Tables {
		at := &applyTable{
			source:  t.Source.Schema + "." + t.Source.Name,
			target:  t.Target.String(),
			ident:   pgx.Identifier{t.Target.Schema, t.Target.Name}.Sanitize(),
			planned: map[string]bool{},
		}
		for _, c := range t.Source.Columns {
			at.planned[c.Name] = true
		}
		idx := map[string]int{}
		for _, c := range t.Columns {
			at.planned[c.Source] = true
			idx[c.Source] = len(at.cols)
			expr := c.Expr
			if expr == "" {
				expr = pgx.Identifier{c.Source}.Sanitize()
			}
			typ := c.SourceType
			if typ == "" {
				typ = c.TargetType
			}
			at.cols = append(at.cols, applyCol{source: c.Source, srcType: typ, tgtType: c.TargetType, target: c.Target, expr: expr})
		}
		for _, k := range t.Key {
			i, ok := idx[k]
			if !ok {
				at.err = fmt.Errorf("table %s: key column %s is not copied to %s, so changes cannot be matched", at.source, k, at.target)
				break
			}
			at.key = append(at.key, i)
		}
		a.tables[relName{t.Source.Schema, t.Source.Name}] = at
		a.order = append(a.order, at)
	}
	return a
}

// ApplyError is a change the target could not take. Its message names the
// target table, the key and the commit LSN, never other column values.
type ApplyError struct {
	Table string // target schema.name
	Key   string // "col=value, ..." of the source key; empty for a keyless table
	LSN   pgoutput.LSN
	Err   error
}

func (e *ApplyError) Error() string {
	key := e.Key
	if key == "" {
		key = "no key"
	}
	return fmt.Sprintf("applying change of transaction committed at %s to %s (%s): %s", e.LSN, e.Table, key, safeMessage(e.Err))
}

func (e *ApplyError) Unwrap() error { return e.Err }

// safeMessage describes err without the column values PostgreSQL puts in
// some messages (invalid input syntax quotes the value).
func safeMessage(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	if strings.HasPrefix(pe.Code, "22") {
		msg := "invalid value"
		if pe.ColumnName != "" {
			msg += " for column " + pe.ColumnName
		}
		return fmt.Sprintf("%s (SQLSTATE %s)", msg, pe.Code)
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
}

// _migration.cdc holds each task's checkpoint: every change committed up
// to lsn is applied. _migration.cdc_part holds, only while a batch applied
// in parts is unfinished (or was cut short by a crash), how far each part
// got beyond it (see applyParallel).
const checkpointDDL = `CREATE SCHEMA IF NOT EXISTS _migration;
CREATE TABLE IF NOT EXISTS _migration.cdc (
	task text PRIMARY KEY,
	lsn pg_lsn NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS _migration.cdc_part (
	task text NOT NULL,
	part int NOT NULL,
	parts int NOT NULL,
	lsn pg_lsn NOT NULL,
	PRIMARY KEY (task, part)
)`

func (a *Applier) ensureCheckpointTable(ctx context.Context) error {
	if a.ready.Load() {
		return nil
	}
	if _, err := a.tgt.Exec(ctx, checkpointDDL, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("creating _migration.cdc: %w", err)
	}
	a.ready.Store(true)
	return nil
}

// Checkpoint returns the last applied commit LSN recorded for the task (0 if none) from _migration.cdc (task text PK, lsn pg_lsn/bigint, applied_at timestamptz) — create the table if missing (CREATE SCHEMA IF NOT EXISTS _migration).
func (a *Applier) Checkpoint(ctx context.Context) (pgoutput.LSN, error) {
	if err := a.ensureCheckpointTable(ctx); err != nil {
		return 0, err
	}
	return readCheckpoint(ctx, a.tgt, a.task, "")
}

// Start records lsn (the slot's consistent point) as the task's checkpoint
// unless it already has one: from then on the target knows that capture
// was set up, and a slot that disappears is noticed rather than recreated.
func (a *Applier) Start(ctx context.Context, lsn pgoutput.LSN) error {
	if err := a.ensureCheckpointTable(ctx); err != nil {
		return err
	}
	if _, err := a.tgt.Exec(ctx, `INSERT INTO _migration.cdc (task, lsn) VALUES ($1, $2::text::pg_lsn)
ON CONFLICT (task) DO NOTHING`, a.task, lsn.String()); err != nil {
		return fmt.Errorf("recording the start %s of task %s: %w", lsn, a.task, err)
	}
	return nil
}

// ReadCheckpoint reads the task's checkpoint without writing anything (plan
// time): ok is false when capture was never set up for the task.
func ReadCheckpoint(ctx context.Context, tgt *pgxpool.Pool, task string) (lsn pgoutput.LSN, appliedAt time.Time, ok bool, err error) {
	var s *string
	err = tgt.QueryRow(ctx, `SELECT to_regclass('_migration.cdc')::text`).Scan(&s)
	if err != nil || s == nil {
		return 0, time.Time{}, false, err
	}
	var text string
	err = tgt.QueryRow(ctx, `SELECT lsn::text, applied_at FROM _migration.cdc WHERE task = $1`, task).Scan(&text, &appliedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("reading the checkpoint of task %s: %w", task, err)
	}
	lsn, err = pgoutput.ParseLSN(text)
	return lsn, appliedAt, err == nil, err
}

// Forget deletes the task's checkpoint (destroy).
func Forget(ctx context.Context, tgt *pgxpool.Pool, task string) error {
	var table *string
	err := tgt.QueryRow(ctx, `SELECT to_regclass('_migration.cdc')::text`).Scan(&table)
	if err == nil && table != nil {
		_, err = tgt.Exec(ctx, `DELETE FROM _migration.cdc WHERE task = $1`, task)
		var parts *string
		if err == nil {
			err = tgt.QueryRow(ctx, `SELECT to_regclass('_migration.cdc_part')::text`).Scan(&parts)
		}
		if err == nil && parts != nil {
			_, err = tgt.Exec(ctx, `DELETE FROM _migration.cdc_part WHERE task = $1`, task)
		}
	}
	if err != nil {
		return fmt.Errorf("forgetting the checkpoint of task %s: %w", task, err)
	}
	return nil
}

func readCheckpoint(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, task, lock string) (pgoutput.LSN, error) {
	var s string
	err := q.QueryRow(ctx, "SELECT lsn::text FROM _migration.cdc WHERE task = $1"+lock, task).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the checkpoint of task %s: %w", task, err)
	}
	return pgoutput.ParseLSN(s)
}

// Apply applies txns (in commit order) exactly once and returns the new
// checkpoint, the last transaction's CommitLSN. Transactions at or before
// the checkpoint are skipped, so a replay after a crash is exact. A batch
// goes to the target in one transaction with its checkpoint; or, when the
// Applier has Parts > 1 and the batch allows it, split by key over Parts
// transactions at once (see applyParallel).
func (a *Applier) Apply(ctx context.Context, txns []Txn) (lsn pgoutput.LSN, err error) {
	if err := a.ensureCheckpointTable(ctx); err != nil {
		return 0, err
	}
	if a.Parts > 1 && a.complete.Load() && !a.partsLeft.Load() {
		if split := a.split(txns); split != nil {
			ok, err := a.parallelSafe(ctx)
			if err != nil {
				return 0, err
			}
			if ok {
				return a.applyParallel(ctx, txns, split)
			}
		}
	}
	return a.applySerial(ctx, txns)
}

// rollback ends tx unless it was committed (a committed pgx.Tx rolls back
// as a no-op), even once ctx is done: the deferred end of each apply
// transaction.
func rollback(ctx context.Context, tx pgx.Tx) { _ = tx.Rollback(context.WithoutCancel(ctx)) }

// begin opens an apply transaction. replica reports whether it writes as
// a replica (no foreign keys, no ordinary triggers).
func (a *Applier) begin(ctx context.Context) (tx pgx.Tx, replica bool, err error) {
	tx, err = a.tgt.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("applying changes of task %s: %w", a.task, err)
	}
	// The checkpoint commits with the data: a commit lost to a crash is
	// replayed from the older checkpoint, so no flush wait is needed.
	// Staged keys are joined to the target one by one through its key's
	// index, never by scanning a large target table (the staging table
	// has no statistics the planner could weigh).
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
		pgx.QueryExecModeSimpleProtocol); err != nil {
		rollback(ctx, tx)
		return nil, false, fmt.Errorf("applying changes of task %s: %w", a.task, err)
	}
	// Like a subscription's apply worker, write as a replica: foreign keys
	// and ordinary triggers do not fire, so tables may be merged one at a
	// time. Without the privilege to set it, apply as the session is.
	replica = true
	if _, err := tx.Exec(ctx, "SAVEPOINT apply_role; SET LOCAL session_replication_role = replica; RELEASE SAVEPOINT apply_role", pgx.QueryExecModeSimpleProtocol); err != nil {
		replica = false
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT apply_role", pgx.QueryExecModeSimpleProtocol); err != nil {
			rollback(ctx, tx)
			return nil, false, fmt.Errorf("applying changes of task %s: %w", a.task, err)
		}
	}
	return tx, replica, nil
}

// Prepare readies the target for the batches to come, in a transaction of
// its own, so that the first batch may be applied in parts too: it adds the
// planned columns the target lacks, learns whether the apply may write as a
// replica, and whether parts of an earlier batch are ahead of the
// checkpoint (batches are then applied whole until they are caught up).
func (a *Applier) Prepare(ctx context.Context) error {
	if err := a.ensureCheckpointTable(ctx); err != nil {
		return err
	}
	tx, replica, err := a.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	if err := a.addPlannedColumns(ctx, tx); err != nil {
		return err
	}
	cp, err := readCheckpoint(ctx, tx, a.task, "")
	if err != nil {
		return err
	}
	parts, err := readParts(ctx, tx, a.task, cp)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("preparing the target of task %s: %w", a.task, err)
	}
	a.replica.Store(replica)
	a.partsLeft.Store(parts != nil)
	a.complete.Store(true)
	return nil
}

// applySerial applies txns in one target transaction.
func (a *Applier) applySerial(ctx context.Context, txns []Txn) (pgoutput.LSN, error) {
	tx, replica, err := a.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer rollback(ctx, tx)
	// FOR UPDATE serializes two appliers of one task.
	cp, err := readCheckpoint(ctx, tx, a.task, " FOR UPDATE")
	if err != nil {
		return 0, err
	}
	// Parts of an earlier batch that got further than cp (a crash in the
	// middle of applyParallel): their changes up to there are skipped.
	parts, err := readParts(ctx, tx, a.task, cp)
	if err != nil {
		return 0, err
	}
	if err := a.addPlannedColumns(ctx, tx); err != nil {
		return 0, err
	}
	b := &applyBatch{a: a, tx: tx, pending: map[*applyTable]*applyPending{}}
	last, _, err := b.collect(ctx, txns, cp, parts)
	if err != nil {
		return 0, err
	}
	if last == cp {
		return cp, nil
	}
	for _, at := range a.order {
		if err := b.flush(ctx, at); err != nil {
			return 0, err
		}
	}
	if err := a.saveCheckpoint(ctx, tx, last, parts != nil); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing changes of task %s up to %s: %w", a.task, last, err)
	}
	a.replica.Store(replica)
	a.complete.Store(true)
	left := false
	if parts != nil {
		for _, l := range parts.lsn {
			left = left || l > last
		}
	}
	a.partsLeft.Store(left)
	return last, nil
}

// saveCheckpoint records last as the task's checkpoint in tx, and drops
// the parts' positions when there are some (all parts are at last now).
func (a *Applier) saveCheckpoint(ctx context.Context, tx pgx.Tx, last pgoutput.LSN, dropParts bool) error {
	sql := `INSERT INTO _migration.cdc (task, lsn, applied_at) VALUES ($1, $2::text::pg_lsn, now())
ON CONFLICT (task) DO UPDATE SET lsn = excluded.lsn, applied_at = excluded.applied_at`
	if _, err := tx.Exec(ctx, sql, a.task, last.String()); err != nil {
		return fmt.Errorf("saving checkpoint %s of task %s: %w", last, a.task, err)
	}
	if dropParts {
		// Parts that got further than last keep their position.
		if _, err := tx.Exec(ctx, `DELETE FROM _migration.cdc_part WHERE task = $1 AND lsn <= $2::text::pg_lsn`, a.task, last.String()); err != nil {
			return fmt.Errorf("saving checkpoint %s of task %s: %w", last, a.task, err)
		}
	}
	return nil
}

// addPlannedColumns adds to the target tables the planned columns they
// lack: the plan is built from the source as it is now, and a column added
// on the source after the load (and before this Applier) is in the plan
// but not yet on the target. Once per Applier, in the apply's transaction.
func (a *Applier) addPlannedColumns(ctx context.Context, tx pgx.Tx) error {
	if a.complete.Load() || len(a.order) == 0 {
		return nil
	}
	names := make([]string, len(a.order))
	for i, at := range a.order {
		names[i] = at.ident
	}
	rows, err := tx.Query(ctx, `
		SELECT t.i::int, a.attname FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i)
		JOIN pg_attribute a ON a.attrelid = to_regclass(t.name)
		WHERE a.attnum > 0 AND NOT a.attisdropped`, names)
	if err != nil {
		return fmt.Errorf("reading the target's columns: %w", err)
	}
	has := map[int]map[string]bool{}
	for rows.Next() {
		var i int
		var col string
		if err := rows.Scan(&i, &col); err != nil {
			rows.Close()
			return fmt.Errorf("reading the target's columns: %w", err)
		}
		if has[i-1] == nil {
			has[i-1] = map[string]bool{}
		}
		has[i-1][col] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the target's columns: %w", err)
	}
	for i, at := range a.order {
		if has[i] == nil {
			continue // no such table: the first change to it says so
		}
		for _, c := range at.cols {
			if has[i][c.target] || c.tgtType == "" {
				continue
			}
			if _, err := tx.Exec(ctx, "ALTER TABLE "+at.ident+" ADD COLUMN IF NOT EXISTS "+pgx.Identifier{c.target}.Sanitize()+" "+c.tgtType); err != nil {
				return &ApplyError{Table: at.target, Err: fmt.Errorf("adding column %s, added on the source since the load: %w", c.target, err)}
			}
		}
	}
	return nil
}

// applyBatch is one Apply's state.
type applyBatch struct {
	a       *Applier
	tx      pgx.Tx
	pending map[*applyTable]*applyPending
	// vals and rows are chunks the batch's collapsed rows are cut from,
	// and scratch builds key strings: a batch holds tens of thousands of
	// rows, and allocating each piece alone was a large part of apply's CPU.
	vals    []Value
	rows    []applyRow
	scratch []byte
	// staged names the staging tables flushTyped filled in this transaction.
	staged map[string]bool
}

// applyPending holds a table's collapsed changes not yet written: one row
// per key, the last writer's.
type applyPending struct {
	cols   []applyCol
	colIdx map[string]int
	tgtCol map[string]bool // target's columns; nil until read
	rows   map[string]int  // key → index in order
	order  []*applyRow
	// pos maps the columns of posOf (a Relation's column list) to cols.
	pos   []int
	posOf *Column
}

// applyRow is the final state of one key in the batch.
type applyRow struct {
	del  bool
	vals []Value // by applyPending.cols; Kind 'u' marks a value to keep
	// lookup is the key whose target row holds the 'u' values: the row's
	// own key, or the old key of a key change.
	lookup []Value
	key    []Value
	lsn    pgoutput.LSN
	// existed is true when the key was on the source before the batch
	// (its first change in the batch is an update or a delete), so it is
	// on the target too; moved when the row's key changed in the batch.
	existed, moved bool
}

// collect adds to the batch the changes of txns committed after cp, but
// those their part already applied (parts). It returns the last commit
// LSN it went through (cp when none) and whether it added a change.
func (b *applyBatch) collect(ctx context.Context, txns []Txn, cp pgoutput.LSN, parts *partState) (last pgoutput.LSN, changed bool, err error) {
	last = cp
	for i := range txns {
		t := &txns[i]
		if t.CommitLSN <= cp {
			continue
		}
		for j := range t.Changes {
			c := &t.Changes[j]
			if parts.done(b.a, c, t.CommitLSN) {
				continue
			}
			if err := b.change(ctx, t.CommitLSN, c); err != nil {
				return 0, false, err
			}
			changed = true
		}
		last = t.CommitLSN
	}
	return last, changed, nil
}

func (b *applyBatch) newValues(n int) []Value {
	if len(b.vals)+n > cap(b.vals) {
		b.vals = make([]Value, 0, max(4096, n))
	}
	i := len(b.vals)
	b.vals = b.vals[:i+n]
	return b.vals[i : i+n : i+n]
}

func (b *applyBatch) newRow(r applyRow) *applyRow {
	if len(b.rows) == cap(b.rows) {
		b.rows = make([]applyRow, 0, 1024)
	}
	b.rows = append(b.rows, r)
	return &b.rows[len(b.rows)-1]
}

func (b *applyBatch) table(at *applyTable) *applyPending {
	p := b.pending[at]
	if p == nil {
		p = &applyPending{cols: append([]applyCol(nil), at.cols...), colIdx: map[string]int{}, rows: map[string]int{}}
		for i, c := range p.cols {
			p.colIdx[c.source] = i
		}
		b.pending[at] = p
	}
	return p
}

func (b *applyBatch) change(ctx context.Context, lsn pgoutput.LSN, c *Change) error {
	at := b.a.tables[relName{c.Schema, c.Table}]
	if at == nil {
		return nil
	}
	if at.err != nil {
		return at.err
	}
	p := b.table(at)
	if c.Op == Truncate {
		if err := b.flush(ctx, at); err != nil {
			return err
		}
		sql := "TRUNCATE " + at.ident
		if c.RestartIdentity {
			sql += " RESTART IDENTITY"
		}
		if _, err := b.tx.Exec(ctx, sql); err != nil {
			return &ApplyError{Table: at.target, LSN: lsn, Err: fmt.Errorf("truncating: %w", err)}
		}
		return nil
	}
	if err := b.addColumns(ctx, at, p, lsn, c); err != nil {
		return err
	}
	// pos maps the change's columns to the pending columns (-1: not
	// copied); changes of one Relation share it.
	if len(c.Columns) > 0 && (p.posOf != &c.Columns[0] || len(p.pos) != len(c.Columns)) {
		p.pos = make([]int, len(c.Columns))
		for i, col := range c.Columns {
			j, ok := p.colIdx[col.Name]
			if !ok {
				j = -1
			}
			p.pos[i] = j
		}
		p.posOf = &c.Columns[0]
	}
	pos := p.pos
	pick := func(src []Value) ([]Value, error) {
		out := b.newValues(len(p.cols))
		for i := range out {
			out[i] = Value{Kind: 'n'}
		}
		for i, j := range pos {
			if j < 0 || i >= len(src) {
				continue
			}
			if src[i].Kind == 'b' {
				return nil, &ApplyError{Table: at.target, LSN: lsn, Err: fmt.Errorf("column %s is in binary form, which apply does not read", c.Columns[i].Name)}
			}
			out[j] = src[i]
		}
		return out, nil
	}
	if len(at.key) == 0 {
		return b.keyless(ctx, at, p, lsn, c, pick)
	}
	// keyOf returns the key's values and a string for the key, built in
	// b.scratch: valid until the next call.
	keyOf := func(vals []Value) ([]Value, []byte) {
		k := b.newValues(len(at.key))
		s := b.scratch[:0]
		for i, j := range at.key {
			k[i] = vals[j]
			s = strconv.AppendInt(s, int64(len(vals[j].Data)), 10)
			s = append(s, byte(vals[j].Kind), ':')
			s = append(s, vals[j].Data...)
		}
		b.scratch = s
		return k, s
	}
	var newVals, oldVals []Value
	var err error
	if c.New != nil {
		if newVals, err = pick(c.New); err != nil {
			return err
		}
	}
	if c.Old != nil {
		if oldVals, err = pick(c.Old); err != nil {
			return err
		}
	}
	switch c.Op {
	case Insert:
		k, ks := keyOf(newVals)
		b.put(p, string(ks), applyRow{vals: newVals, key: k, lookup: k, lsn: lsn})
	case Delete:
		if oldVals == nil {
			return &ApplyError{Table: at.target, LSN: lsn, Err: errors.New("delete without old key")}
		}
		k, ks := keyOf(oldVals)
		b.put(p, string(ks), applyRow{del: true, key: k, lsn: lsn, existed: true})
	case Update:
		k, ks := keyOf(newVals)
		key := string(ks)
		lookup, lookupKey := k, key
		if oldVals != nil {
			if ok, oks := keyOf(oldVals); string(oks) != key {
				lookup, lookupKey = ok, string(oks)
			}
		}
		// A key changed in the batch is new there, unless it was deleted before.
		row := applyRow{vals: newVals, key: k, lookup: lookup, lsn: lsn, existed: lookupKey == key, moved: lookupKey != key}
		// Unchanged values come from the key's earlier state in the batch
		// when there is one; else from the target row at lookup.
		var old *applyRow
		if i, ok := p.rows[lookupKey]; ok {
			old = p.order[i]
		}
		if old != nil && !old.del {
			for i, v := range newVals {
				if v.Kind == 'u' {
					newVals[i] = old.vals[i]
				}
			}
			row.lookup = old.lookup
			row.moved = row.moved || old.moved
		}
		if lookupKey != key {
			b.put(p, lookupKey, applyRow{del: true, key: lookup, lsn: lsn, existed: true})
		}
		b.put(p, key, row)
	default:
		return fmt.Errorf("table %s: unknown change %q at %s", at.source, c.Op, lsn)
	}
	return nil
}

// put makes r the final state of key, overwriting an earlier state in
// place. r.existed says whether a key first seen in the batch was on the
// target before it; a key seen earlier keeps what its first change said.
func (b *applyBatch) put(p *applyPending, key string, r applyRow) {
	if i, ok := p.rows[key]; ok {
		r.existed = p.order[i].existed
		*p.order[i] = r
		return
	}
	p.rows[key] = len(p.order)
	p.order = append(p.order, b.newRow(r))
}

func (r *applyRow) flagged() bool {
	for _, v := range r.vals {
		if v.Kind == 'u' {
			return true
		}
	}
	return false
}

// addColumns adds to the target the columns a change has that neither the
// plan nor the target knows: columns added on the source since the plan.
func (b *applyBatch) addColumns(ctx context.Context, at *applyTable, p *applyPending, lsn pgoutput.LSN, c *Change) error {
	for _, col := range c.Columns {
		if _, ok := p.colIdx[col.Name]; ok || at.planned[col.Name] {
			continue
		}
		// The staging layout changes: write what is pending first.
		if err := b.flush(ctx, at); err != nil {
			return err
		}
		if p.tgtCol == nil {
			rows, err := b.tx.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, at.ident)
			if err != nil {
				return fmt.Errorf("reading the columns of %s: %w", at.target, err)
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("reading the columns of %s: %w", at.target, err)
			}
			p.tgtCol = map[string]bool{}
			for _, n := range names {
				p.tgtCol[n] = true
			}
		}
		if col.TypeOID >= firstNormalOID {
			return &ApplyError{Table: at.target, LSN: lsn, Err: fmt.Errorf("column %s was added on the source with a user-defined type (OID %d); add it to %s by hand", col.Name, col.TypeOID, at.target)}
		}
		var typ string
		if err := b.tx.QueryRow(ctx, "SELECT format_type($1, $2)", col.TypeOID, col.TypeMod).Scan(&typ); err != nil {
			return fmt.Errorf("naming the type of added column %s of %s: %w", col.Name, at.source, err)
		}
		ident := pgx.Identifier{col.Name}.Sanitize()
		if !p.tgtCol[col.Name] {
			if _, err := b.tx.Exec(ctx, "ALTER TABLE "+at.ident+" ADD COLUMN IF NOT EXISTS "+ident+" "+typ); err != nil {
				return &ApplyError{Table: at.target, LSN: lsn, Err: fmt.Errorf("adding column %s: %w", col.Name, err)}
			}
			p.tgtCol[col.Name] = true
		}
		p.colIdx[col.Name] = len(p.cols)
		p.cols = append(p.cols, applyCol{source: col.Name, srcType: typ, target: col.Name, expr: ident})
		p.posOf = nil
	}
	return nil
}

func keyString(at *applyTable, p *applyPending, key []Value) string {
	parts := make([]string, len(at.key))
	for i, j := range at.key {
		v := "NULL"
		if i < len(key) && key[i].Kind == 't' {
			v = string(key[i].Data)
		}
		parts[i] = p.cols[j].source + "=" + v
	}
	return strings.Join(parts, ", ")
}

// flush writes a table's pending rows: COPY into a staging table, then
// set-based statements. Each key has one final state in the batch, so
// the statements' order only matters for unchanged values read from the
// target (first) and unique constraints (deletes before upserts).
func (b *applyBatch) flush(ctx context.Context, at *applyTable) error {
	p := b.pending[at]
	if p == nil || len(p.order) == 0 {
		return nil
	}
	rows := p.order
	p.rows = map[string]int{}
	p.order = nil

	if len(at.key) > 0 {
		done, err := b.flushTyped(ctx, at, p, rows)
		if done || err != nil {
			return err
		}
		// The target does not hold what the source's changes imply, or a
		// row is at fault: the general statements below take the target as
		// it is, and name the row at fault.
	}
	var nFlag, nDel, nPlain int
	for _, r := range rows {
		switch {
		case r.del:
			nDel++
		case r.flagged():
			nFlag++
		default:
			nPlain++
		}
	}
	var ddl strings.Builder
	ddl.WriteString("CREATE TEMP TABLE apply_stage (__seq int4, __op text, __f bool")
	for i := range p.cols {
		fmt.Fprintf(&ddl, ", __c%d text, __u%d bool", i, i)
	}
	for i := range at.key {
		fmt.Fprintf(&ddl, ", __o%d text", i)
	}
	ddl.WriteString(") ON COMMIT DROP")
	if _, err := b.tx.Exec(ctx, ddl.String(), pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("staging changes of %s: %w", at.source, err)
	}
	var buf bytes.Buffer
	for seq, r := range rows {
		buf.WriteString(strconv.Itoa(seq))
		if r.del {
			buf.WriteString("\tD\tf")
		} else if r.flagged() {
			buf.WriteString("\tU\tt")
		} else {
			buf.WriteString("\tU\tf")
		}
		for i := range p.cols {
			var v Value
			if r.del {
				for k, j := range at.key {
					if j == i {
						v = r.key[k]
					}
				}
			} else {
				v = r.vals[i]
			}
			buf.WriteByte('\t')
			appendCopy(&buf, v)
			if v.Kind == 'u' {
				buf.WriteString("\tt")
			} else {
				buf.WriteString("\tf")
			}
		}
		for k := range at.key {
			buf.WriteByte('\t')
			if r.lookup != nil {
				appendCopy(&buf, r.lookup[k])
			} else {
				buf.WriteString(`\N`)
			}
		}
		buf.WriteByte('\n')
	}
	if _, err := b.tx.Conn().PgConn().CopyFrom(ctx, &buf, "COPY apply_stage FROM STDIN"); err != nil {
		return fmt.Errorf("staging changes of %s: %w", at.source, err)
	}
	if _, err := b.tx.Exec(ctx, "SAVEPOINT apply_flush", pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("staging changes of %s: %w", at.source, err)
	}
	s := buildApplySQL(at, p.cols)
	run := func(sql, filter string, args ...any) error {
		_, err := b.tx.Exec(ctx, strings.Replace(sql, "$FILTER", filter, 1), append([]any{pgx.QueryExecModeExec}, args...)...)
		return err
	}
	var err error
	if nFlag > 0 {
		err = run(s.flagged, "")
	}
	if err == nil && nDel > 0 {
		err = run(s.del, "")
	}
	if err == nil && nPlain > 0 {
		err = run(s.plain, "")
	}
	if err != nil && !rowFault(err) {
		return &ApplyError{Table: at.target, LSN: rows[len(rows)-1].lsn, Err: err}
	}
	if err != nil {
		// Find the row at fault, one row at a time, to name its key and LSN.
		if _, rerr := b.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT apply_flush", pgx.QueryExecModeSimpleProtocol); rerr != nil {
			return &ApplyError{Table: at.target, LSN: rows[len(rows)-1].lsn, Err: err}
		}
		for seq, r := range rows {
			sql := s.plain
			switch {
			case r.del:
				sql = s.del
			case r.flagged():
				sql = s.flagged
			}
			if rerr := run(sql, " AND s.__seq = $1", seq); rerr != nil {
				return &ApplyError{Table: at.target, Key: keyString(at, p, r.key), LSN: r.lsn, Err: rerr}
			}
		}
		return &ApplyError{Table: at.target, LSN: rows[len(rows)-1].lsn, Err: err}
	}
	if _, err := b.tx.Exec(ctx, "RELEASE SAVEPOINT apply_flush; DROP TABLE apply_stage", pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("staging changes of %s: %w", at.source, err)
	}
	return nil
}

// errDiverged tells flushTyped's caller that the target lacks a row the
// source updated.
var errDiverged = errors.New("target row missing")

// flushTyped writes a keyed table's pending rows the fast way, relying on
// the target holding what the source held before the batch: the rows are
// copied into a staging table typed like the source columns (COPY parses
// each value once), then keys that existed are deleted or updated in place
// and new keys inserted, with no conflict handling. It reports done=false,
// with everything it did undone, when that does not hold (an update found
// no row, an insert found one) or when a row's values are at fault, so
// that flush's general statements can take over; and when the batch has
// a key change that leaves values to read from the row's old key.
func (b *applyBatch) flushTyped(ctx context.Context, at *applyTable, p *applyPending, rows []*applyRow) (done bool, err error) {
	var nDel, nUpd, nIns int
	flags := false
	for _, r := range rows {
		switch {
		case r.del:
			if r.existed {
				nDel++
			}
		case r.flagged() && (r.moved || !r.existed):
			// Its kept values are in another key's row.
			return false, nil
		case r.existed:
			nUpd++
			flags = flags || r.flagged()
		default:
			nIns++
		}
	}
	if nDel+nUpd+nIns == 0 {
		return true, nil
	}
	// The staging table outlives the transaction (emptied at each commit),
	// so that it is not created and dropped for every batch, and the
	// statements over it are prepared once per session: both cost more
	// than a small batch's rows. Its name stands for its layout.
	var cols strings.Builder
	cols.WriteString("__op \"char\"")
	for i, c := range p.cols {
		fmt.Fprintf(&cols, ", __c%d %s", i, c.srcType)
	}
	if flags {
		for i := range p.cols {
			fmt.Fprintf(&cols, ", __u%d bool", i)
		}
	}
	layout := fnv.New64a()
	_, _ = layout.Write([]byte(cols.String()))
	stage := fmt.Sprintf("apply_stage_%016x", layout.Sum64())
	empty := ""
	if b.staged[stage] {
		// Flushed before in this transaction (a truncate or an added
		// column came in between): its rows are still there.
		empty = "; DELETE FROM " + stage
	}
	if b.staged == nil {
		b.staged = map[string]bool{}
	}
	b.staged[stage] = true
	if _, err := b.tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+stage+" ("+cols.String()+") ON COMMIT DELETE ROWS"+empty+"; SAVEPOINT apply_typed",
		pgx.QueryExecModeSimpleProtocol); err != nil {
		return false, fmt.Errorf("staging changes of %s: %w", at.source, err)
	}
	var buf bytes.Buffer
	for _, r := range rows {
		var op byte
		switch {
		case r.del && !r.existed:
			continue // inserted and deleted within the batch
		case r.del:
			op = 'D'
		case r.existed:
			op = 'U'
		default:
			op = 'I'
		}
		buf.WriteByte(op)
		for i := range p.cols {
			buf.WriteByte('\t')
			if r.del {
				v := Value{Kind: 'n'}
				for k, j := range at.key {
					if j == i {
						v = r.key[k]
					}
				}
				appendCopy(&buf, v)
				continue
			}
			appendCopy(&buf, r.vals[i])
		}
		if flags {
			for i := range p.cols {
				if !r.del && r.vals[i].Kind == 'u' {
					buf.WriteString("\tt")
				} else {
					buf.WriteString("\tf")
				}
			}
		}
		buf.WriteByte('\n')
	}
	undo := func(cause error) (bool, error) {
		if !rowFault(cause) && !errors.Is(cause, errDiverged) {
			return false, &ApplyError{Table: at.target, LSN: rows[len(rows)-1].lsn, Err: cause}
		}
		if _, err := b.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT apply_typed; RELEASE SAVEPOINT apply_typed", pgx.QueryExecModeSimpleProtocol); err != nil {
			return false, &ApplyError{Table: at.target, LSN: rows[len(rows)-1].lsn, Err: cause}
		}
		return false, nil
	}
	if _, err := b.tx.Conn().PgConn().CopyFrom(ctx, &buf, "COPY "+stage+" FROM STDIN"); err != nil {
		return undo(err)
	}
	s := buildTypedSQL(at, p.cols, flags, stage)
	if nDel > 0 {
		if _, err := b.tx.Exec(ctx, s.del); err != nil {
			return undo(err)
		}
	}
	if nUpd > 0 {
		tag, err := b.tx.Exec(ctx, s.update)
		if err == nil && tag.RowsAffected() != int64(nUpd) {
			err = errDiverged
		}
		if err != nil {
			return undo(err)
		}
	}
	if nIns > 0 {
		if _, err := b.tx.Exec(ctx, s.insert); err != nil {
			return undo(err)
		}
	}
	if _, err := b.tx.Exec(ctx, "RELEASE SAVEPOINT apply_typed", pgx.QueryExecModeSimpleProtocol); err != nil {
		return false, fmt.Errorf("staging changes of %s: %w", at.source, err)
	}
	return true, nil
}

type typedSQL struct{ del, update, insert string }

// keyExprs lists the key's target values, the plan's expressions over the
// source columns, each named by alias, a format of the key's position k
// (%[1]d) and its column's index j (%[2]d).
func keyExprs(at *applyTable, cols []applyCol, alias string) string {
	out := make([]string, len(at.key))
	for k, j := range at.key {
		out[k] = cols[j].expr + " AS " + fmt.Sprintf(alias, k, j)
	}
	return strings.Join(out, ", ")
}

// buildTypedSQL writes flushTyped's statements over the staging table. The plan's
// expressions name the source columns, so they are evaluated over a derived
// table giving the staged columns the source names.
func buildTypedSQL(at *applyTable, cols []applyCol, flags bool, stage string) typedSQL {
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	src := func(op string) string {
		var b strings.Builder
		b.WriteString("(SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "__c%d AS %s", i, q(c.source))
			if flags {
				fmt.Fprintf(&b, ", __u%d", i)
			}
		}
		b.WriteString(" FROM " + stage + " WHERE __op = '" + op + "') s")
		return b.String()
	}
	// values: "(SELECT expr AS __v0, ... [, __uI] FROM <src>) n"
	values := func(op string) string {
		var b strings.Builder
		b.WriteString("(SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s AS __v%d", c.expr, i)
			if flags {
				fmt.Fprintf(&b, ", s.__u%d", i)
			}
		}
		b.WriteString(" FROM " + src(op) + ") n")
		return b.String()
	}
	isKey := map[int]bool{}
	match := make([]string, len(at.key))
	for k, j := range at.key {
		isKey[j] = true
		match[k] = fmt.Sprintf("t.%s = n.__v%d", q(cols[j].target), j)
	}
	where := strings.Join(match, " AND ")

	del := "DELETE FROM " + at.ident + " t USING (SELECT " + keyExprs(at, cols, "__v%[2]d") + " FROM " + src("D") + ") n WHERE " + where

	var set []string
	for i, c := range cols {
		if isKey[i] {
			continue
		}
		v := fmt.Sprintf("n.__v%d", i)
		if flags {
			v = fmt.Sprintf("CASE WHEN n.__u%d THEN t.%s ELSE n.__v%d END", i, q(c.target), i)
		}
		set = append(set, q(c.target)+" = "+v)
	}
	update := ""
	if len(set) > 0 {
		update = "UPDATE " + at.ident + " t SET " + strings.Join(set, ", ") + " FROM " + values("U") + " WHERE " + where
	} else {
		// Only key columns: an update that keeps the key changes nothing,
		// but must still find its row.
		update = "SELECT 1 FROM " + at.ident + " t, " + values("U") + " WHERE " + where
	}

	tcols := make([]string, len(cols))
	exprs := make([]string, len(cols))
	for i, c := range cols {
		tcols[i] = q(c.target)
		exprs[i] = c.expr
	}
	insert := "INSERT INTO " + at.ident + " (" + strings.Join(tcols, ", ") + ") SELECT " + strings.Join(exprs, ", ") + " FROM " + src("I")
	return typedSQL{del: del, update: update, insert: insert}
}

// rowFault reports an error a row's values cause (a data exception or a
// constraint violation), which a row-at-a-time retry can pin to one key.
func rowFault(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// appendCopy writes v in COPY's text format.
func appendCopy(buf *bytes.Buffer, v Value) {
	if v.Kind != 't' {
		buf.WriteString(`\N`)
		return
	}
	d := v.Data
	plain := true
	for _, c := range d {
		if c == '\\' || c == '\n' || c == '\r' || c == '\t' {
			plain = false
			break
		}
	}
	if plain {
		buf.Write(d)
		return
	}
	for _, c := range d {
		switch c {
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			buf.WriteByte(c)
		}
	}
}

type applySQL struct{ flagged, del, plain string }

// buildApplySQL writes the set-based statements over apply_stage. The
// plan's expressions name the source columns, so they are evaluated over
// a derived table that casts the staged text to the source types under
// the source names. $FILTER narrows to one row when looking for a fault.
func buildApplySQL(at *applyTable, cols []applyCol) applySQL {
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	var typed strings.Builder
	typed.WriteString("(SELECT __seq, __op, __f")
	for i, c := range cols {
		fmt.Fprintf(&typed, ", __u%d, CAST(__c%d AS %s) AS %s", i, i, c.srcType, q(c.source))
	}
	typed.WriteString(" FROM apply_stage) s")
	var old strings.Builder
	old.WriteString("(SELECT __seq")
	for k, j := range at.key {
		fmt.Fprintf(&old, ", CAST(__o%d AS %s) AS %s", k, cols[j].srcType, q(cols[j].source))
	}
	old.WriteString(" FROM apply_stage) o")

	tcols := make([]string, len(cols))
	for i, c := range cols {
		tcols[i] = q(c.target)
	}
	tkeys := make([]string, len(at.key))
	isKey := map[int]bool{}
	for k, j := range at.key {
		tkeys[k] = q(cols[j].target)
		isKey[j] = true
	}
	var set []string
	for i, c := range cols {
		if !isKey[i] {
			set = append(set, q(c.target)+" = excluded."+q(c.target))
		}
	}
	conflict := " ON CONFLICT (" + strings.Join(tkeys, ", ") + ") DO NOTHING"
	if len(at.key) == 0 {
		conflict = ""
	} else if len(set) > 0 {
		conflict = " ON CONFLICT (" + strings.Join(tkeys, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
	}
	insert := "INSERT INTO " + at.ident + " (" + strings.Join(tcols, ", ") + ") "

	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = c.expr
	}
	plain := insert + "SELECT " + strings.Join(exprs, ", ") + " FROM " + typed.String() +
		" WHERE s.__op = 'U' AND NOT s.__f$FILTER" + conflict

	var inner, outer strings.Builder
	inner.WriteString("(SELECT s.__seq")
	for i, c := range cols {
		fmt.Fprintf(&inner, ", s.__u%d, %s AS __v%d", i, c.expr, i)
		if i > 0 {
			outer.WriteString(", ")
		}
		fmt.Fprintf(&outer, "CASE WHEN n.__u%d THEN t.%s ELSE n.__v%d END", i, q(c.target), i)
	}
	inner.WriteString(" FROM " + typed.String() + " WHERE s.__op = 'U' AND s.__f$FILTER) n")
	var look strings.Builder
	look.WriteString("(SELECT o.__seq")
	on := make([]string, len(at.key))
	for k, j := range at.key {
		fmt.Fprintf(&look, ", %s AS __k%d", cols[j].expr, k)
		on[k] = fmt.Sprintf("t.%s = l.__k%d", q(cols[j].target), k)
	}
	look.WriteString(" FROM " + old.String() + ") l")
	flagged := insert + "SELECT " + outer.String() + " FROM " + inner.String() +
		" JOIN " + look.String() + " ON l.__seq = n.__seq LEFT JOIN " + at.ident + " t ON " +
		strings.Join(on, " AND ") + conflict

	var del strings.Builder
	del.WriteString("DELETE FROM " + at.ident + " t USING (SELECT " + keyExprs(at, cols, "__k%[1]d") +
		" FROM " + typed.String() + " WHERE s.__op = 'D'$FILTER) d WHERE ")
	for k, j := range at.key {
		if k > 0 {
			del.WriteString(" AND ")
		}
		fmt.Fprintf(&del, "t.%s = d.__k%d", q(cols[j].target), k)
	}
	return applySQL{flagged: flagged, del: del.String(), plain: plain}
}

// keyless applies a change to a table without a key (REPLICA IDENTITY
// FULL) at once, one row at a time: an update or delete matches one row
// equal in every old column. Correct over fast: such tables are rare.
func (b *applyBatch) keyless(ctx context.Context, at *applyTable, p *applyPending, lsn pgoutput.LSN,
	c *Change, pick func([]Value) ([]Value, error)) error {
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	var args []any
	// derived builds "(SELECT expr AS __vI ... FROM (SELECT CAST($n AS type) AS src ...) s)"
	// over the columns of vals that are known.
	derived := func(vals []Value) (string, []int) {
		var inner, outer []string
		var idx []int
		for i, v := range vals {
			if v.Kind == 'u' {
				continue
			}
			var arg any
			if v.Kind == 't' {
				arg = string(v.Data)
			}
			args = append(args, arg)
			inner = append(inner, fmt.Sprintf("CAST($%d::text AS %s) AS %s", len(args), p.cols[i].srcType, q(p.cols[i].source)))
			outer = append(outer, fmt.Sprintf("%s AS __v%d", p.cols[i].expr, i))
			idx = append(idx, i)
		}
		return "(SELECT " + strings.Join(outer, ", ") + " FROM (SELECT " + strings.Join(inner, ", ") + ") s)", idx
	}
	match := func(old []Value) string {
		d, idx := derived(old)
		conds := make([]string, len(idx))
		for k, i := range idx {
			conds[k] = fmt.Sprintf("t.%s IS NOT DISTINCT FROM o.__v%d", q(p.cols[i].target), i)
		}
		return "(SELECT t.ctid FROM " + at.ident + " t, " + d + " o WHERE " + strings.Join(conds, " AND ") + " LIMIT 1)"
	}
	var sql string
	switch c.Op {
	case Insert:
		// Inserts need no match: they are staged and copied in one
		// statement until an update or delete of the table comes.
		vals, err := pick(c.New)
		if err != nil {
			return err
		}
		p.order = append(p.order, &applyRow{vals: vals, lsn: lsn})
		return nil
	case Delete, Update:
		if err := b.flush(ctx, at); err != nil {
			return err
		}
		if c.Old == nil {
			return &ApplyError{Table: at.target, LSN: lsn, Err: errors.New("the table has no key and the change carries no old row; set REPLICA IDENTITY FULL on the source")}
		}
		old, err := pick(c.Old)
		if err != nil {
			return err
		}
		if c.Op == Delete {
			sql = "DELETE FROM " + at.ident + " WHERE ctid = " + match(old)
			break
		}
		vals, err := pick(c.New)
		if err != nil {
			return err
		}
		d, idx := derived(vals)
		if len(idx) == 0 {
			return nil
		}
		set := make([]string, len(idx))
		for k, i := range idx {
			set[k] = fmt.Sprintf("%s = n.__v%d", q(p.cols[i].target), i)
		}
		sql = "UPDATE " + at.ident + " SET " + strings.Join(set, ", ") + " FROM " + d + " n WHERE " + at.ident + ".ctid = " + match(old)
	default:
		return fmt.Errorf("table %s: unknown change %q at %s", at.source, c.Op, lsn)
	}
	if _, err := b.tx.Exec(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...); err != nil {
		return &ApplyError{Table: at.target, LSN: lsn, Err: err}
	}
	return nil
}
