package copy //nolint:predeclared // see doc.go

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipeBuffer batches the source's row-sized COPY messages into large
// writes, so the target gets few large CopyData messages (pgconn sends one
// per Read) and the pipe hands over few times per chunk.
const pipeBuffer = 256 << 10

// copyOutSQL is the source side of chunk c.
func (c *chunkRun) copyOutSQL() (string, error) {
	pred, err := predicate(c.spec.method, c.spec.key, c.spec.lo, c.spec.hi)
	if err != nil {
		return "", fmt.Errorf("chunk %d: %w", c.num+1, err)
	}
	sql := "COPY (SELECT " + selectList(c.t.p) + " FROM ONLY " + ident(c.spec.rel) + " WHERE " + pred
	if w := c.t.p.Where; w != "" {
		// The newline ends a trailing comment in the user's condition.
		sql += " AND (" + w + "\n)"
	}
	return sql + ") TO STDOUT (FORMAT " + c.t.format + ")", nil
}

// copyChunk copies chunk c and records it done in the same target
// transaction: either both the rows and the record commit, or neither.
func (r *runner) copyChunk(ctx context.Context, src, tgt *pgx.Conn, c *chunkRun) error {
	t := c.t
	fail := func(err error) error {
		rollback(ctx, tgt)
		return fmt.Errorf("copying chunk %d of %d of %s: %w", c.num+1, len(t.chunks), t.p.Target, err)
	}
	start := time.Now()
	copyOut, err := c.copyOutSQL()
	if err != nil {
		return fail(err)
	}
	if _, err := tgt.PgConn().Exec(ctx, "BEGIN; SET LOCAL synchronous_commit = off").ReadAll(); err != nil {
		return fail(err)
	}
	rows, err := pipe(ctx, src.PgConn(), tgt.PgConn(), copyOut, t.copyIn+" (FORMAT "+t.format+")")
	if err != nil {
		return fail(err)
	}
	tag, err := tgt.Exec(ctx, `UPDATE _migration.chunks SET rows = $5, done_at = clock_timestamp()
		WHERE task = $1 AND target_schema = $2 AND target_name = $3 AND chunk = $4 AND done_at IS NULL`,
		r.opt.Task, t.p.Target.Schema, t.p.Target.Name, c.num, rows)
	if err != nil {
		return fail(fmt.Errorf("recording chunk: %w", err))
	}
	if tag.RowsAffected() != 1 {
		return fail(errors.New("the chunk's record is gone or already done (was the task forgotten or run elsewhere?)"))
	}
	tag, err = tgt.Exec(ctx, "COMMIT")
	if err != nil {
		return fail(fmt.Errorf("committing: %w", err))
	}
	if tag.String() != "COMMIT" {
		return fail(fmt.Errorf("committing: server answered %s", tag))
	}
	c.done = true
	r.event(Event{Table: t.p.Target.String(), Chunk: c.num + 1, Chunks: len(t.chunks), Rows: rows,
		Elapsed: time.Since(start), Message: "chunk copied"})
	return nil
}

func rollback(ctx context.Context, conn *pgx.Conn) {
	if conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = conn.Exec(ctx, "ROLLBACK")
}

// errTargetStopped tells the source side that nobody reads any more.
var errTargetStopped = errors.New("the target stopped reading")

// pipe streams the output of copyOut on src into copyIn on tgt without
// decoding it, and returns the rows the target took. Memory is the pipe's
// buffer, whatever the chunk's size.
func pipe(ctx context.Context, src, tgt *pgconn.PgConn, copyOut, copyIn string) (int64, error) {
	pr, pw := io.Pipe()
	srcDone := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, pipeBuffer)
		_, err := src.CopyTo(ctx, bw, copyOut)
		if err == nil {
			err = bw.Flush()
		}
		// A nil error reaches the reader as io.EOF: the end of the data.
		_ = pw.CloseWithError(err)
		srcDone <- err
	}()
	tag, tgtErr := tgt.CopyFrom(ctx, pr, copyIn)
	// Unblock the source if the target ended first.
	_ = pr.CloseWithError(errTargetStopped)
	srcErr := <-srcDone
	switch {
	case srcErr != nil && !errors.Is(srcErr, errTargetStopped):
		// The target's error is then only "COPY from stdin failed".
		return 0, fmt.Errorf("reading source: %w", srcErr)
	case tgtErr != nil:
		return 0, fmt.Errorf("writing target: %w", tgtErr)
	case srcErr != nil:
		return 0, fmt.Errorf("reading source: %w", srcErr)
	}
	return tag.RowsAffected(), nil
}

// chooseFormat picks binary COPY unless a column's binary form would not
// read back on the target: binary arrays and composites carry their
// element types' OIDs, which differ between databases for user-defined
// types, and a few types have no binary form at all. Text COPY then reads
// every type back, since each expression's type is the target column's.
func (r *runner) chooseFormat(ctx context.Context, src, tgt *pgx.Conn, t *tableRun) error {
	t.format = "binary"
	sd, err := src.PgConn().Prepare(ctx, "", "SELECT "+selectList(t.p)+" FROM "+ident(t.source())+" LIMIT 0", nil)
	if err != nil {
		return fmt.Errorf("describing source of %s: %w", t.p.Target, err)
	}
	if len(sd.Fields) != len(t.p.Columns) {
		return fmt.Errorf("describing source of %s: %d columns, want %d", t.p.Target, len(sd.Fields), len(t.p.Columns))
	}
	srcOIDs := make([]uint32, len(sd.Fields))
	for i, f := range sd.Fields {
		srcOIDs[i] = f.DataTypeOID
	}
	keys := make([]string, len(srcOIDs))
	for i, o := range srcOIDs {
		keys[i] = fmt.Sprint(o)
	}
	srcTypes, err := typeInfo(ctx, src, `SELECT t.oid::text, t.oid, t.typcategory = 'A' OR t.typtype = 'c',
		t.typsend <> 0 AND t.typreceive <> 0
		FROM pg_type t WHERE t.oid::text = ANY($1)`, keys)
	if err != nil {
		return fmt.Errorf("reading source types of %s: %w", t.p.Target, err)
	}
	// Domains count as their base type (binary COPY sends the base type).
	tgtTypes, err := typeInfo(ctx, tgt, `SELECT a.attname::text, b.oid, b.typcategory = 'A' OR b.typtype = 'c',
		b.typsend <> 0 AND b.typreceive <> 0
		FROM pg_attribute a
		JOIN pg_type d ON d.oid = a.atttypid
		JOIN pg_type b ON b.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`, ident(t.p.Target))
	if err != nil {
		return fmt.Errorf("reading target types of %s: %w", t.p.Target, err)
	}
	for i, c := range t.p.Columns {
		s, ok1 := srcTypes[keys[i]]
		d, ok2 := tgtTypes[c.Target]
		if !ok1 || !ok2 {
			return fmt.Errorf("reading types of %s: column %q not found", t.p.Target, c.Target)
		}
		portable := s.binary && d.binary
		switch {
		case s.embedsOIDs || d.embedsOIDs:
			// Only built-in element types have the same OID everywhere.
			portable = portable && s.oid == d.oid && s.oid < firstNormalOID
		case s.oid != d.oid:
			// A user-defined type (an enum, say) has another OID on the
			// target; a built-in one with another OID is another type.
			portable = portable && s.oid >= firstNormalOID && d.oid >= firstNormalOID
		}
		if !portable {
			t.format = "text"
			r.event(Event{Table: t.p.Target.String(), Message: fmt.Sprintf("text COPY: column %q has no portable binary form", c.Target)})
			return nil
		}
	}
	return nil
}

// firstNormalOID is where user-defined objects' OIDs start.
const firstNormalOID = 16384

type typeFacts struct {
	oid        uint32
	embedsOIDs bool
	binary     bool
}

// typeInfo runs sql (returning key, type oid, embeds OIDs, has binary
// I/O) and maps each key to its facts.
func typeInfo(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (map[string]typeFacts, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]typeFacts{}
	for rows.Next() {
		var key string
		var f typeFacts
		if err := rows.Scan(&key, &f.oid, &f.embedsOIDs, &f.binary); err != nil {
			return nil, err
		}
		out[key] = f
	}
	return out, rows.Err()
}
