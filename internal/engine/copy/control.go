package copy //nolint:predeclared // see doc.go

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// ControlSchema is the target schema holding the tasks' progress.
const ControlSchema = "_migration"

// Task phases.
const (
	PhasePending  = "pending"
	PhaseLoading  = "loading"
	PhaseIndexing = "indexing"
	PhaseDone     = "done"
)

// Table phases (PhasePending and PhaseLoading are shared with tasks).
const (
	PhaseCreated = "created"
	PhaseLoaded  = "loaded"
	PhaseIndexed = "indexed"
)

// controlDDL creates the control schema. Chunks are stored when planned (done_at
// NULL) and marked done in the transaction that copies their rows.
var controlDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS _migration`,
	`CREATE TABLE IF NOT EXISTS _migration.tasks (
		name        text PRIMARY KEY,
		fingerprint text NOT NULL,
		phase       text NOT NULL,
		started_at  timestamptz NOT NULL DEFAULT now(),
		finished_at timestamptz,
		updated_at  timestamptz NOT NULL DEFAULT now(),
		last_error  text NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE IF NOT EXISTS _migration.tables (
		task          text NOT NULL REFERENCES _migration.tasks (name) ON DELETE CASCADE,
		target_schema text NOT NULL,
		target_name   text NOT NULL,
		source        text NOT NULL,
		ord           integer NOT NULL,
		phase         text NOT NULL,
		chunks        integer NOT NULL DEFAULT 0,
		rows          bigint NOT NULL DEFAULT 0,
		started_at    timestamptz,
		finished_at   timestamptz,
		fk_done_at    timestamptz,
		PRIMARY KEY (task, target_schema, target_name)
	)`,
	`CREATE TABLE IF NOT EXISTS _migration.chunks (
		task          text NOT NULL,
		target_schema text NOT NULL,
		target_name   text NOT NULL,
		chunk         integer NOT NULL,
		source_schema text NOT NULL,
		source_name   text NOT NULL,
		method        text NOT NULL,
		key           text[],
		lo            text[],
		hi            text[],
		rows          bigint,
		done_at       timestamptz,
		PRIMARY KEY (task, target_schema, target_name, chunk),
		FOREIGN KEY (task, target_schema, target_name)
			REFERENCES _migration.tables (task, target_schema, target_name) ON DELETE CASCADE
	)`,
}

// schemaLockKey serializes concurrent creations of the control schema
// (CREATE ... IF NOT EXISTS still races on the catalog's unique indexes).
const schemaLockKey = "migration control schema"

// taskLockKey is the advisory lock a Run holds for its whole duration, so
// two runs of one task never copy the same chunk.
func taskLockKey(task string) string { return "migration task " + task }

var (
	// ErrTaskRunning is returned when another session runs the same task.
	ErrTaskRunning = errors.New("the task is running in another session")
	// ErrFingerprintMismatch is returned by Run when the task's records were
	// made for a different plan: Forget it (and drop or empty its targets)
	// before loading the new plan.
	ErrFingerprintMismatch = errors.New("the task's records belong to a different plan")
)

// querier is what both a pool and a connection offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func ensureControlSchema(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('_migration.chunks') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("checking control schema %s: %w", ControlSchema, err)
	}
	if exists {
		return nil
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, schemaLockKey); err != nil {
			return err
		}
		for _, stmt := range controlDDL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating control schema %s: %w", ControlSchema, err)
	}
	return nil
}

func controlSchemaExists(ctx context.Context, q querier) (bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('_migration.chunks') IS NOT NULL`).Scan(&exists); err != nil {
		return false, fmt.Errorf("checking control schema %s: %w", ControlSchema, err)
	}
	return exists, nil
}

// ReadStatus reads task's progress from the target. Exists is false when the
// task has no records, including when the control schema is absent.
func ReadStatus(ctx context.Context, tgt *pgxpool.Pool, task string) (Status, error) {
	return readStatus(ctx, tgt, task)
}

func readStatus(ctx context.Context, q querier, task string) (Status, error) {
	st := Status{Task: task}
	ok, err := controlSchemaExists(ctx, q)
	if err != nil || !ok {
		return st, err
	}
	var started, finished pgtype.Timestamptz
	err = q.QueryRow(ctx,
		`SELECT fingerprint, phase, started_at, finished_at, last_error FROM _migration.tasks WHERE name = $1`, task).
		Scan(&st.Fingerprint, &st.Phase, &started, &finished, &st.LastError)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("reading status of task %q: %w", task, err)
	}
	st.Exists, st.StartedAt, st.FinishedAt = true, timeOf(started), timeOf(finished)

	rows, err := q.Query(ctx, `
		SELECT t.target_schema, t.target_name, t.source, t.phase, t.chunks, t.started_at, t.finished_at,
		       coalesce(c.done, 0), coalesce(c.rows, 0)
		FROM _migration.tables t
		LEFT JOIN LATERAL (
			SELECT count(*) FILTER (WHERE done_at IS NOT NULL) AS done, sum(rows) AS rows
			FROM _migration.chunks c
			WHERE c.task = t.task AND c.target_schema = t.target_schema AND c.target_name = t.target_name
		) c ON true
		WHERE t.task = $1
		ORDER BY t.ord, t.target_schema, t.target_name`, task)
	if err != nil {
		return st, fmt.Errorf("reading tables of task %q: %w", task, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ts TableStatus
		var schema, name string
		var tStarted, tFinished pgtype.Timestamptz
		if err := rows.Scan(&schema, &name, &ts.Source, &ts.Phase, &ts.Chunks, &tStarted, &tFinished,
			&ts.ChunksDone, &ts.Rows); err != nil {
			return st, fmt.Errorf("reading tables of task %q: %w", task, err)
		}
		ts.TargetName = plan.Name{Schema: schema, Name: name}
		ts.Target = ts.TargetName.String()
		ts.StartedAt, ts.FinishedAt = timeOf(tStarted), timeOf(tFinished)
		st.Tables = append(st.Tables, ts)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("reading tables of task %q: %w", task, err)
	}
	return st, nil
}

func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time
}

// Forget deletes task's control records on the target. It never touches
// the target tables or their rows. Forgetting a task without records
// succeeds; forgetting a running task fails with ErrTaskRunning.
func Forget(ctx context.Context, tgt *pgxpool.Pool, task string) error {
	ok, err := controlSchemaExists(ctx, tgt)
	if err != nil || !ok {
		return err
	}
	err = pgx.BeginFunc(ctx, tgt, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`,
			taskLockKey(task)).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			return ErrTaskRunning
		}
		// Chunks and tables go with the task (ON DELETE CASCADE).
		_, err := tx.Exec(ctx, `DELETE FROM _migration.tasks WHERE name = $1`, task)
		return err
	})
	if err != nil {
		return fmt.Errorf("forgetting task %q: %w", task, err)
	}
	return nil
}

// DropTargets drops every target table of p (a partitioned root with its
// partitions), in one statement so that foreign keys between them do not
// matter. It drops neither schemas nor types, nor anything that depends on
// the tables from outside the plan (that is an error), and leaves the
// control records alone (see Forget).
func DropTargets(ctx context.Context, tgt *pgxpool.Pool, p *plan.Plan) error {
	if p == nil || len(p.Tables) == 0 {
		return nil
	}
	seen := map[plan.Name]bool{}
	stmt := "DROP TABLE IF EXISTS "
	for _, t := range p.Tables {
		if seen[t.Target] {
			continue
		}
		if len(seen) > 0 {
			stmt += ", "
		}
		seen[t.Target] = true
		stmt += ident(t.Target)
	}
	if _, err := tgt.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("dropping %d target tables: %w", len(seen), err)
	}
	return nil
}

// recordError stores msg as the task's last error, best effort: it runs
// after ctx may have ended, with a short deadline of its own.
func recordError(ctx context.Context, tgt *pgxpool.Pool, task, msg string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = tgt.Exec(ctx, `UPDATE _migration.tasks SET last_error = $2, updated_at = now() WHERE name = $1`, task, msg)
}
