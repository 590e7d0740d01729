package cdc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
)

// Applying a batch in parts
//
// A subscription's apply worker is one process: the target applies one
// change after another however many cores it has. A batch whose changes
// each touch one row by key can instead be split by key over several
// target transactions that run at once: changes of one key stay in one
// part, in commit order, and parts touch disjoint rows.
//
// Each part commits its changes together with its own position in
// _migration.cdc_part; once every part has committed, one small
// transaction moves the task's checkpoint to the batch's end and drops the
// parts' positions. A crash in between leaves the checkpoint before the
// batch and the positions of the parts that committed: the next apply
// replays from the checkpoint and skips, part by part, what those parts
// already applied (partState.done). The part of a change is a hash of its
// table's key values, fixed for good, with the number of parts the
// positions were written with.
//
// A batch is applied whole in one transaction instead when a change in it
// is not confined to one key (a truncate, a table without a key, a key
// that changes, a column added on the source), and always while the
// Applier has not yet applied a batch of its own (the first batch adds
// planned columns and learns whether it may write as a replica). Parts
// are used only when the target checks nothing across rows that parts
// could trip over in another order than the source's: the apply must run
// as a replica (no foreign keys, no ordinary triggers), and the tables
// may have no unique index beside their key and no exclusion constraint.

// partState is how far each part of an unfinished batch got beyond the
// checkpoint; nil when no part did.
type partState struct {
	parts int
	lsn   map[int]pgoutput.LSN
}

// readParts reads the positions of the task's parts beyond cp.
func readParts(ctx context.Context, tx pgx.Tx, task string, cp pgoutput.LSN) (*partState, error) {
	rows, err := tx.Query(ctx, `SELECT part, parts, lsn::text FROM _migration.cdc_part WHERE task = $1 AND lsn > $2::text::pg_lsn`, task, cp.String())
	if err != nil {
		return nil, fmt.Errorf("reading the parts' checkpoints of task %s: %w", task, err)
	}
	defer rows.Close()
	var ps *partState
	for rows.Next() {
		var part, parts int
		var text string
		if err := rows.Scan(&part, &parts, &text); err != nil {
			return nil, fmt.Errorf("reading the parts' checkpoints of task %s: %w", task, err)
		}
		lsn, err := pgoutput.ParseLSN(text)
		if err != nil {
			return nil, err
		}
		if ps == nil {
			ps = &partState{parts: parts, lsn: map[int]pgoutput.LSN{}}
		}
		if parts != ps.parts {
			return nil, fmt.Errorf("task %s: parts' checkpoints written with %d and %d parts", task, ps.parts, parts)
		}
		ps.lsn[part] = lsn
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the parts' checkpoints of task %s: %w", task, err)
	}
	return ps, nil
}

// done reports whether change c, committed at lsn, was applied by its part.
func (ps *partState) done(a *Applier, c *Change, lsn pgoutput.LSN) bool {
	if ps == nil {
		return false
	}
	part, ok := a.partOf(c, ps.parts)
	if !ok {
		// Changes that are not confined to a key are never applied in parts.
		return false
	}
	at, has := ps.lsn[part]
	return has && lsn <= at
}

// partOf returns the part of c among parts, and false when c is not
// confined to one key of a planned table.
func (a *Applier) partOf(c *Change, parts int) (int, bool) {
	at := a.tables[relName{c.Schema, c.Table}]
	if at == nil {
		return 0, true // not planned: skipped wherever it goes
	}
	if at.err != nil || len(at.key) == 0 || c.Op == Truncate || len(c.Columns) == 0 {
		return 0, false
	}
	if at.partOf != &c.Columns[0] || len(at.partPos) != len(at.key) {
		// The key's positions among this Relation's columns, and whether
		// every column is planned (else the target gains a column).
		at.partPos, at.partAll = make([]int, len(at.key)), true
		for _, col := range c.Columns {
			if !at.planned[col.Name] {
				at.partAll = false
			}
		}
		for k, j := range at.key {
			at.partPos[k] = -1
			for i, col := range c.Columns {
				if col.Name == at.cols[j].source {
					at.partPos[k] = i
				}
			}
			if at.partPos[k] < 0 {
				at.partAll = false
			}
		}
		at.partOf = &c.Columns[0]
	}
	if !at.partAll {
		return 0, false
	}
	vals := c.New
	if c.Op == Delete {
		vals = c.Old
	}
	h, ok := keyHash(vals, at.partPos)
	if !ok {
		return 0, false
	}
	if c.Op == Update && c.Old != nil {
		// A key change moves a row between parts.
		if old, ok := keyHash(c.Old, at.partPos); !ok || old != h || !sameKey(c.Old, c.New, at.partPos) {
			return 0, false
		}
	}
	return int(h % uint64(parts)), true
}

// keyHash is FNV-1a over the key's values: fixed for good, since positions
// of parts written by one version are read by the next.
func keyHash(vals []Value, pos []int) (uint64, bool) {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, i := range pos {
		if i >= len(vals) || vals[i].Kind == 'u' {
			return 0, false
		}
		h = (h ^ uint64(vals[i].Kind)) * prime
		for _, b := range vals[i].Data {
			h = (h ^ uint64(b)) * prime
		}
		h = (h ^ 0xff) * prime
	}
	return h, true
}

func sameKey(a, b []Value, pos []int) bool {
	for _, i := range pos {
		if a[i].Kind != b[i].Kind || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}

// split divides txns into a.Parts lists by key, or returns nil when a
// change is not confined to one key.
func (a *Applier) split(txns []Txn) [][]Txn {
	n := a.Parts
	total := 0
	for i := range txns {
		total += len(txns[i].Changes)
	}
	of := make([]uint8, 0, total)
	count := make([]int, n)
	for i := range txns {
		for j := range txns[i].Changes {
			part, ok := a.partOf(&txns[i].Changes[j], n)
			if !ok {
				return nil
			}
			of = append(of, uint8(part))
			count[part]++
		}
	}
	out := make([][]Txn, n)
	backing := make([][]Change, n)
	for p := range out {
		out[p] = make([]Txn, 0, len(txns))
		backing[p] = make([]Change, 0, count[p])
	}
	k := 0
	start := make([]int, n)
	for i := range txns {
		t := &txns[i]
		for p := range n {
			start[p] = len(backing[p])
		}
		for j := range t.Changes {
			p := of[k]
			k++
			backing[p] = append(backing[p], t.Changes[j])
		}
		for p := range n {
			sub := *t
			sub.Changes = backing[p][start[p]:len(backing[p]):len(backing[p])]
			out[p] = append(out[p], sub)
		}
	}
	return out
}

// maxParts bounds Parts: the part of a change is stored in a byte.
const maxParts = 64

// parallelSafe reports whether the target may take batches in parts: the
// applies write as a replica, and no table has a unique index beside its
// key or an exclusion constraint. Asked once per Applier.
func (a *Applier) parallelSafe(ctx context.Context) (bool, error) {
	if a.safe != nil {
		return *a.safe, nil
	}
	safe := a.replica.Load() && a.Parts <= maxParts
	if safe {
		names := make([]string, len(a.order))
		for i, at := range a.order {
			names[i] = at.ident
		}
		var n int
		err := a.tgt.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM pg_index i WHERE i.indrelid = ANY (t.oids) AND i.indisunique)
			     - (SELECT count(DISTINCT i.indrelid) FROM pg_index i WHERE i.indrelid = ANY (t.oids) AND i.indisunique)
			     + (SELECT count(*) FROM pg_constraint c WHERE c.conrelid = ANY (t.oids) AND c.contype = 'x')
			FROM (SELECT array_agg(to_regclass(n)::oid) AS oids FROM unnest($1::text[]) n) t`, names).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("reading the target's unique indexes: %w", err)
		}
		safe = n == 0
	}
	a.safe = &safe
	return safe, nil
}

// applyParallel applies txns split into parts, each in its own target
// transaction, all at once; then folds the parts' positions into the
// checkpoint.
func (a *Applier) applyParallel(ctx context.Context, txns []Txn, parts [][]Txn) (pgoutput.LSN, error) {
	last := txns[len(txns)-1].CommitLSN
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = a.applyPart(ctx, p, len(parts), parts[p], last)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		var ae *ApplyError
		if errors.As(err, &ae) {
			return 0, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	a.parallelBatches.Add(1)
	tx, err := a.tgt.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("applying changes of task %s: %w", a.task, err)
	}
	defer rollback(ctx, tx)
	cp, err := readCheckpoint(ctx, tx, a.task, " FOR UPDATE")
	if err == nil && last > cp {
		err = a.saveCheckpoint(ctx, tx, last, true)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("committing changes of task %s up to %s: %w", a.task, last, err)
	}
	return max(last, cp), nil
}

// applyPart applies one part of a batch with the part's position.
func (a *Applier) applyPart(ctx context.Context, part, parts int, txns []Txn, last pgoutput.LSN) error {
	tx, replica, err := a.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	if !replica {
		return fmt.Errorf("applying changes of task %s: the target no longer lets the apply write as a replica", a.task)
	}
	cp, err := readCheckpoint(ctx, tx, a.task, "")
	if err != nil {
		return err
	}
	if last <= cp {
		return tx.Rollback(ctx)
	}
	b := &applyBatch{a: a, tx: tx, pending: map[*applyTable]*applyPending{}}
	_, changed, err := b.collect(ctx, txns, cp, nil)
	if err != nil {
		return err
	}
	if !changed {
		// Nothing of this part: the checkpoint covers it once moved.
		return tx.Rollback(ctx)
	}
	for _, at := range a.order {
		if err := b.flush(ctx, at); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO _migration.cdc_part (task, part, parts, lsn) VALUES ($1, $2, $3, $4::text::pg_lsn)
ON CONFLICT (task, part) DO UPDATE SET parts = excluded.parts, lsn = excluded.lsn`, a.task, part, parts, last.String()); err != nil {
		return fmt.Errorf("saving checkpoint %s of part %d of task %s: %w", last, part, a.task, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing changes of part %d of task %s up to %s: %w", part, a.task, last, err)
	}
	return nil
}
