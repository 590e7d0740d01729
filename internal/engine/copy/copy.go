package copy //nolint:predeclared // see doc.go

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// Defaults for Options.
const (
	DefaultParallelism       = 4
	DefaultChunkBytes  int64 = 64 << 20
	maxParallelism           = 64
)

const (
	// cleanupTimeout bounds what runs after ctx ended: rollbacks, closes,
	// recording the last error.
	cleanupTimeout = 10 * time.Second
)

// indexWorkers is the max_parallel_maintenance_workers index builds get at least.
const indexWorkers = 2

// indexMemory is the maintenance_work_mem index builds get at least.
const indexMemory = "256MB"

// lockWait is how long Run waits for another run of the task to end (a
// killed run's session may take a moment to go away).
var lockWait = 10 * time.Second

// Options tunes Run.
type Options struct {
	// Task is the task's name: control records are keyed by it.
	Task string
	// Parallelism is how many chunks are copied at once (default 4). Each
	// worker holds one source and one target connection, opened with the
	// pools' settings; Run adds one of each for the snapshot and control.
	Parallelism int
	// ChunkBytes is the size of a chunk, judged from the relation's size
	// on disk (default 64 MiB).
	ChunkBytes int64
	// Snapshot is an exported snapshot to read (the CDC slot's); empty makes
	// Run export its own.
	Snapshot string
	// PrepareOnly stops after creating the target tables and recording the
	// task and its tables: no snapshot, no rows. The next Run goes on.
	PrepareOnly bool
	// SchemaOnly creates the tables, keys, indexes and foreign keys the
	// target lacks, copies no rows and finishes the task: a cdc_only task,
	// whose target already holds the data or starts empty.
	SchemaOnly bool
	// Progress, when set, receives an Event per copied chunk and per step
	// (created, indexed, foreign keys). It is called from many goroutines.
	Progress func(Event)
}

// Event reports progress. A chunk event has Chunk (1-based) of Chunks,
// Rows copied and the chunk's Elapsed time; a step event has Chunk 0 and
// says what happened in Message.
type Event struct {
	Table   string
	Chunk   int
	Chunks  int
	Rows    int64
	Elapsed time.Duration
	Message string
}

// TableStatus is one table's progress. Phase is "pending", "created",
// "loading", "loaded" or "indexed".
type TableStatus struct {
	Source, Target string
	// TargetName is Target as schema and name (either may contain a dot).
	TargetName            plan.Name
	Chunks, ChunksDone    int
	Rows                  int64
	Phase                 string
	StartedAt, FinishedAt time.Time
}

// Status is a task's progress as recorded on the target. Phase is
// "pending", "loading", "indexing" or "done".
type Status struct {
	Task                  string
	Exists                bool
	Fingerprint           string
	Phase                 string
	Tables                []TableStatus
	StartedAt, FinishedAt time.Time
	LastError             string
}

// Run performs, or resumes, the full load of p for opt.Task: it creates the
// target tables, plans chunks (once; a resume reuses them), copies the
// chunks not yet done from one source snapshot, builds each table's indexes
// once its chunks are in, then adds foreign keys. Each step is recorded on
// the target and never runs twice. fingerprint is stored with the task; a
// task recorded with another fingerprint is refused (ErrFingerprintMismatch).
// A finished task's Run does nothing.
//
// When ctx ends, the chunks in flight roll back and Run returns the status
// so far with an error wrapping ctx.Err(). A resumed run reads a new
// snapshot: rows changed in between are for CDC to bring over.
func Run(ctx context.Context, src, tgt *pgxpool.Pool, p *plan.Plan, fingerprint string, opt Options) (Status, error) {
	if opt.Task == "" {
		return Status{}, errors.New("full load: the task name is empty")
	}
	if p == nil {
		return Status{Task: opt.Task}, fmt.Errorf("full load of task %q: no plan", opt.Task)
	}
	if opt.Parallelism <= 0 {
		opt.Parallelism = DefaultParallelism
	}
	opt.Parallelism = min(opt.Parallelism, maxParallelism)
	if opt.ChunkBytes <= 0 {
		opt.ChunkBytes = DefaultChunkBytes
	}
	r := &runner{src: src, tgt: tgt, plan: p, fingerprint: fingerprint, opt: opt}
	err := r.run(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		err = fmt.Errorf("full load of task %q: %w", opt.Task, err)
		if !errors.Is(err, ErrTaskRunning) && !errors.Is(err, ErrFingerprintMismatch) {
			recordError(ctx, tgt, opt.Task, err.Error())
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	st, serr := readStatus(sctx, tgt, opt.Task)
	if err == nil && serr != nil {
		err = serr
	}
	return st, err
}

type runner struct {
	src, tgt    *pgxpool.Pool
	plan        *plan.Plan
	fingerprint string
	opt         Options
	tables      []*tableRun
	chunksLeft  atomic.Int64
}

// tableRun is one plan table during a run.
type tableRun struct {
	p       *plan.Table
	phase   string
	fkDone  bool
	bytes   int64
	chunks  []*chunkRun
	pending atomic.Int64
	copyIn  string // COPY target (cols) FROM STDIN ...
	format  string // binary or text
}

func (t *tableRun) source() plan.Name {
	return plan.Name{Schema: t.p.Source.Schema, Name: t.p.Source.Name}
}

type chunkRun struct {
	t    *tableRun
	num  int
	spec chunkSpec
	done bool
}

func (r *runner) event(e Event) {
	if r.opt.Progress != nil {
		r.opt.Progress(e)
	}
}

func (r *runner) run(ctx context.Context) error {
	ctl, err := dial(ctx, r.tgt, r.opt.Task, "control")
	if err != nil {
		return fmt.Errorf("connecting to target: %w", err)
	}
	defer closeConn(ctx, ctl)
	if err := lockTask(ctx, ctl, r.opt.Task); err != nil {
		return err
	}
	defer unlockTask(ctx, ctl, r.opt.Task)
	if err := ensureControlSchema(ctx, ctl); err != nil {
		return err
	}
	phase, err := r.openTask(ctx, ctl)
	if err != nil || phase == PhaseDone {
		return err
	}
	if err := r.registerTables(ctx, ctl); err != nil {
		return err
	}
	if err := r.createTargets(ctx, ctl); err != nil || r.opt.PrepareOnly {
		return err
	}
	if err := r.loadChunks(ctx, ctl); err != nil {
		return err
	}
	if err := r.load(ctx, ctl); err != nil {
		return err
	}
	if err := r.setTaskPhase(ctx, ctl, PhaseIndexing); err != nil {
		return err
	}
	if err := r.addForeignKeys(ctx, ctl); err != nil {
		return err
	}
	if _, err := ctl.Exec(ctx, `UPDATE _migration.tasks SET phase = $2, finished_at = now(), updated_at = now(),
		last_error = '' WHERE name = $1`, r.opt.Task, PhaseDone); err != nil {
		return fmt.Errorf("recording task done: %w", err)
	}
	return nil
}

// dial opens a connection of its own with pool's settings: a long COPY or
// a snapshot held for hours should neither starve nor be recycled by the
// pool, and Parallelism is the caller's explicit bound.
func dial(ctx context.Context, pool *pgxpool.Pool, task, role string) (*pgx.Conn, error) {
	return dialWith(ctx, pool, task, role, nil)
}

func dialWith(ctx context.Context, pool *pgxpool.Pool, task, role string, tune func(*pgx.ConnConfig)) (*pgx.Conn, error) {
	cfg := pool.Config().ConnConfig
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if cfg.RuntimeParams["application_name"] == "" {
		name := "migration " + role + " " + task
		if len(name) > 63 {
			name = name[:63]
		}
		cfg.RuntimeParams["application_name"] = name
	}
	// A load can hold its snapshot idle for hours and run long COPYs; text
	// output must read back exactly (text COPY, chunk bounds).
	for k, v := range map[string]string{
		"statement_timeout":                   "0",
		"idle_in_transaction_session_timeout": "0",
		"DateStyle":                           "ISO",
		"IntervalStyle":                       "postgres",
		"extra_float_digits":                  "3",
		"bytea_output":                        "hex",
	} {
		cfg.RuntimeParams[k] = v
	}
	if tune != nil {
		tune(cfg)
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// dialReader opens a source connection for reading chunks.
func dialReader(ctx context.Context, pool *pgxpool.Pool, task string) (*pgx.Conn, error) {
	return dialWith(ctx, pool, task, "reader", func(cfg *pgx.ConnConfig) {
		// A key range read in index order fetches heap pages a row at a
		// time (at random, for an uncorrelated key); a bitmap heap scan
		// reads each page once, in physical order.
		cfg.RuntimeParams["enable_indexscan"] = "off"
	})
}

func closeConn(ctx context.Context, conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// lockTask takes the task's advisory lock for the session's life.
func lockTask(ctx context.Context, conn *pgx.Conn, task string) error {
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", lockWait.Milliseconds())); err != nil {
		return fmt.Errorf("locking task: %w", err)
	}
	_, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, taskLockKey(task))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return ErrTaskRunning
	}
	if err != nil {
		return fmt.Errorf("locking task: %w", err)
	}
	if _, err := conn.Exec(ctx, "RESET lock_timeout"); err != nil {
		return fmt.Errorf("locking task: %w", err)
	}
	return nil
}

// unlockTask releases the task's lock before the session closes: closing
// only asks the server to end the backend, so a lock left to the close can
// outlive Run by a moment and refuse the caller's next step.
func unlockTask(ctx context.Context, conn *pgx.Conn, task string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, taskLockKey(task))
}

// openTask creates the task's record or checks the existing one, and
// returns its phase.
func (r *runner) openTask(ctx context.Context, ctl *pgx.Conn) (string, error) {
	var fp, phase string
	err := ctl.QueryRow(ctx, `SELECT fingerprint, phase FROM _migration.tasks WHERE name = $1`, r.opt.Task).Scan(&fp, &phase)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := ctl.Exec(ctx, `INSERT INTO _migration.tasks (name, fingerprint, phase) VALUES ($1, $2, $3)`,
			r.opt.Task, r.fingerprint, PhasePending); err != nil {
			return "", fmt.Errorf("recording task: %w", err)
		}
		return PhasePending, nil
	case err != nil:
		return "", fmt.Errorf("reading task: %w", err)
	case fp != r.fingerprint:
		return "", fmt.Errorf("%w: recorded with plan %q, asked to load plan %q; forget the task first",
			ErrFingerprintMismatch, fp, r.fingerprint)
	}
	return phase, nil
}

func (r *runner) setTaskPhase(ctx context.Context, conn *pgx.Conn, phase string) error {
	if _, err := conn.Exec(ctx, `UPDATE _migration.tasks SET phase = $2, updated_at = now() WHERE name = $1`,
		r.opt.Task, phase); err != nil {
		return fmt.Errorf("recording task phase %s: %w", phase, err)
	}
	return nil
}

// registerTables records the plan's tables (new ones as pending) and reads
// back where each one stands.
func (r *runner) registerTables(ctx context.Context, ctl *pgx.Conn) error {
	seen := map[plan.Name]bool{}
	batch := &pgx.Batch{}
	for i := range r.plan.Tables {
		t := &r.plan.Tables[i]
		if seen[t.Target] {
			return fmt.Errorf("two tables of the plan load %s", t.Target)
		}
		if len(t.Columns) == 0 {
			return fmt.Errorf("table %s: no columns to copy", t.Target)
		}
		seen[t.Target] = true
		batch.Queue(`INSERT INTO _migration.tables (task, target_schema, target_name, source, ord, phase)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			r.opt.Task, t.Target.Schema, t.Target.Name, t.Source.QualifiedName(), i, PhasePending)
	}
	if err := ctl.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("recording tables: %w", err)
	}
	type rec struct {
		phase  string
		fkDone bool
	}
	recs := map[plan.Name]rec{}
	rows, err := ctl.Query(ctx, `SELECT target_schema, target_name, phase, fk_done_at IS NOT NULL
		FROM _migration.tables WHERE task = $1`, r.opt.Task)
	if err != nil {
		return fmt.Errorf("reading tables: %w", err)
	}
	for rows.Next() {
		var n plan.Name
		var rc rec
		if err := rows.Scan(&n.Schema, &n.Name, &rc.phase, &rc.fkDone); err != nil {
			rows.Close()
			return fmt.Errorf("reading tables: %w", err)
		}
		recs[n] = rc
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading tables: %w", err)
	}
	r.tables = make([]*tableRun, len(r.plan.Tables))
	for i := range r.plan.Tables {
		t := &r.plan.Tables[i]
		rc := recs[t.Target]
		r.tables[i] = &tableRun{p: t, phase: rc.phase, fkDone: rc.fkDone, bytes: t.Source.Bytes}
		r.tables[i].copyIn = "COPY " + ident(t.Target) + " (" + targetColumns(t) + ") FROM STDIN"
	}
	return nil
}

func targetColumns(t *plan.Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = c.Target
	}
	return identList(cols)
}

func selectList(t *plan.Table) string {
	exprs := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		exprs[i] = c.Expr
		if exprs[i] == "" {
			exprs[i] = pgx.Identifier{c.Source}.Sanitize()
		}
	}
	return strings.Join(exprs, ", ")
}

// createTargets runs each pending table's CreateDDL in one transaction with
// its record, one table after another (tables may share a schema or a type).
func (r *runner) createTargets(ctx context.Context, ctl *pgx.Conn) error {
	for _, t := range r.tables {
		if t.phase != PhasePending {
			continue
		}
		err := pgx.BeginFunc(ctx, ctl, func(tx pgx.Tx) error {
			for _, stmt := range t.p.CreateDDL {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), err)
				}
			}
			if !t.p.Exists {
				if err := setAutovacuum(ctx, tx, t.p.Target, false); err != nil {
					return err
				}
			}
			return r.setTablePhase(ctx, tx, t, PhaseCreated, "")
		})
		if err != nil {
			return fmt.Errorf("creating %s: %w", t.p.Target, err)
		}
		t.phase = PhaseCreated
		r.event(Event{Table: t.p.Target.String(), Message: "created"})
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

// setTablePhase records t's phase; extra is more SET items.
func (r *runner) setTablePhase(ctx context.Context, q querier, t *tableRun, phase, extra string) error {
	sql := `UPDATE _migration.tables SET phase = $4` + extra +
		` WHERE task = $1 AND target_schema = $2 AND target_name = $3`
	if _, err := q.Exec(ctx, sql, r.opt.Task, t.p.Target.Schema, t.p.Target.Name, phase); err != nil {
		return fmt.Errorf("recording phase %s: %w", phase, err)
	}
	return nil
}

// loadChunks reads the stored chunks of tables whose chunks were planned.
func (r *runner) loadChunks(ctx context.Context, ctl *pgx.Conn) error {
	for _, t := range r.tables {
		if t.phase != PhaseLoading && t.phase != PhaseLoaded {
			continue
		}
		rows, err := ctl.Query(ctx, `
			SELECT chunk, source_schema, source_name, method, key, lo, hi, done_at IS NOT NULL
			FROM _migration.chunks WHERE task = $1 AND target_schema = $2 AND target_name = $3
			ORDER BY chunk`, r.opt.Task, t.p.Target.Schema, t.p.Target.Name)
		if err != nil {
			return fmt.Errorf("reading chunks of %s: %w", t.p.Target, err)
		}
		for rows.Next() {
			c := &chunkRun{t: t}
			if err := rows.Scan(&c.num, &c.spec.rel.Schema, &c.spec.rel.Name, &c.spec.method,
				&c.spec.key, &c.spec.lo, &c.spec.hi, &c.done); err != nil {
				rows.Close()
				return fmt.Errorf("reading chunks of %s: %w", t.p.Target, err)
			}
			t.chunks = append(t.chunks, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading chunks of %s: %w", t.p.Target, err)
		}
	}
	return nil
}

// storeChunks plans t's chunks on the snapshot connection and records them
// with the table's move to loading.
func (r *runner) storeChunks(ctx context.Context, snap, ctl *pgx.Conn, t *tableRun) error {
	src := t.source()
	var specs []chunkSpec
	var bytes int64
	if !r.opt.SchemaOnly {
		var err error
		if specs, bytes, err = planChunks(ctx, snap, src, t.p.Key, r.opt.ChunkBytes); err != nil {
			return fmt.Errorf("planning chunks of %s: %w", src, err)
		}
	}
	t.bytes = max(t.bytes, bytes)
	err := pgx.BeginFunc(ctx, ctl, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for i, s := range specs {
			batch.Queue(`INSERT INTO _migration.chunks
				(task, target_schema, target_name, chunk, source_schema, source_name, method, key, lo, hi)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				r.opt.Task, t.p.Target.Schema, t.p.Target.Name, i, s.rel.Schema, s.rel.Name, s.method, s.key, s.lo, s.hi)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		return r.setTablePhase(ctx, tx, t, PhaseLoading, fmt.Sprintf(", chunks = %d, started_at = now()", len(specs)))
	})
	if err != nil {
		return fmt.Errorf("recording chunks of %s: %w", t.p.Target, err)
	}
	t.phase = PhaseLoading
	t.chunks = make([]*chunkRun, len(specs))
	for i, s := range specs {
		t.chunks[i] = &chunkRun{t: t, num: i, spec: s}
	}
	return nil
}

// job is a chunk to copy, or (chunk nil) a table to finish.
type job struct {
	chunk  *chunkRun
	finish *tableRun
}

// load copies every chunk not done yet and builds indexes table by table.
func (r *runner) load(ctx context.Context, ctl *pgx.Conn) error {
	needSource := false
	for _, t := range r.tables {
		if t.phase == PhaseCreated {
			needSource = true
		}
		for _, c := range t.chunks {
			needSource = needSource || !c.done
		}
	}
	if !needSource {
		// Only index builds may be left.
		for _, t := range r.tables {
			if t.phase != PhaseIndexed {
				if err := r.finishTable(ctx, ctl, t); err != nil {
					return err
				}
			}
		}
		return nil
	}

	snap, snapshot, err := r.openSnapshot(ctx)
	if err != nil {
		return err
	}
	defer closeConn(ctx, snap)
	for _, t := range r.tables {
		if t.phase == PhaseCreated {
			if err := r.storeChunks(ctx, snap, ctl, t); err != nil {
				return err
			}
		}
	}
	if err := r.setTaskPhase(ctx, ctl, PhaseLoading); err != nil {
		return err
	}

	// Biggest tables first: their index builds then overlap the copy of
	// the smaller ones.
	order := slices.Clone(r.tables)
	slices.SortStableFunc(order, func(a, b *tableRun) int { return compareInt64(b.bytes, a.bytes) })
	var jobs []job
	var finishOnly []job
	for _, t := range order {
		if t.phase == PhaseIndexed {
			continue
		}
		var pending int64
		for _, c := range t.chunks {
			if !c.done {
				pending++
			}
		}
		t.pending.Store(pending)
		r.chunksLeft.Add(pending)
		if pending == 0 {
			finishOnly = append(finishOnly, job{finish: t})
			continue
		}
		if err := r.chooseFormat(ctx, snap, ctl, t); err != nil {
			return err
		}
		for _, c := range t.chunks {
			if !c.done {
				jobs = append(jobs, job{chunk: c})
			}
		}
	}
	jobs = append(finishOnly, jobs...)
	queue := make(chan job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)

	g, gctx := errgroup.WithContext(ctx)
	for range min(r.opt.Parallelism, len(jobs)) {
		g.Go(func() error { return r.worker(gctx, queue, snapshot) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// End the snapshot now: it holds back the source's vacuum.
	if _, err := snap.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("ending source snapshot: %w", err)
	}
	return nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openSnapshot opens the source transaction that holds the load's
// snapshot (exported here, or imported from opt.Snapshot) until every
// worker has imported it.
func (r *runner) openSnapshot(ctx context.Context) (*pgx.Conn, string, error) {
	conn, err := dial(ctx, r.src, r.opt.Task, "snapshot")
	if err != nil {
		return nil, "", fmt.Errorf("connecting to source: %w", err)
	}
	snapshot := r.opt.Snapshot
	if snapshot != "" {
		err = importSnapshot(ctx, conn, snapshot)
	} else {
		_, err = conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
		if err == nil {
			err = conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot)
		}
		if err != nil {
			err = fmt.Errorf("exporting source snapshot: %w", err)
		}
	}
	if err != nil {
		closeConn(ctx, conn)
		return nil, "", err
	}
	return conn, snapshot, nil
}

func importSnapshot(ctx context.Context, conn *pgx.Conn, snapshot string) error {
	lit, err := quoteSnapshot(snapshot)
	if err != nil {
		return err
	}
	_, err = conn.PgConn().Exec(ctx,
		"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT "+lit).ReadAll()
	if err != nil {
		return fmt.Errorf("importing source snapshot %s: %w", snapshot, err)
	}
	return nil
}

// worker copies chunks from queue until it is empty; whoever copies a
// table's last chunk builds its indexes.
func (r *runner) worker(ctx context.Context, queue <-chan job, snapshot string) (err error) {
	var src, tgt *pgx.Conn
	defer func() {
		closeConn(ctx, src)
		closeConn(ctx, tgt)
	}()
	for j := range queue {
		if err := ctx.Err(); err != nil {
			return err
		}
		if tgt == nil {
			if tgt, err = dial(ctx, r.tgt, r.opt.Task, "writer"); err != nil {
				return fmt.Errorf("connecting to target: %w", err)
			}
		}
		t := j.finish
		if j.chunk != nil {
			if src == nil {
				if src, err = dialReader(ctx, r.src, r.opt.Task); err != nil {
					return fmt.Errorf("connecting to source: %w", err)
				}
				if err := importSnapshot(ctx, src, snapshot); err != nil {
					return err
				}
			}
			if err := r.copyChunk(ctx, src, tgt, j.chunk); err != nil {
				return err
			}
			if r.chunksLeft.Add(-1) == 0 {
				if err := r.setTaskPhase(ctx, tgt, PhaseIndexing); err != nil {
					return err
				}
			}
			if j.chunk.t.pending.Add(-1) > 0 {
				continue
			}
			t = j.chunk.t
		}
		if err := r.finishTable(ctx, tgt, t); err != nil {
			return err
		}
	}
	return nil
}

// finishTable records t loaded, then builds its indexes in one transaction
// with its move to indexed.
func (r *runner) finishTable(ctx context.Context, conn *pgx.Conn, t *tableRun) error {
	if t.phase != PhaseLoaded {
		err := r.setTablePhase(ctx, conn, t, PhaseLoaded, `, rows = (SELECT coalesce(sum(rows), 0)
			FROM _migration.chunks c WHERE c.task = $1 AND c.target_schema = $2 AND c.target_name = $3)`)
		if err != nil {
			return fmt.Errorf("finishing %s: %w", t.p.Target, err)
		}
	}
	start := time.Now()
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if len(t.p.IndexDDL) > 0 {
			// Sorting in memory is what makes building after the load pay;
			// a higher setting of the server's is kept.
			if _, err := tx.Exec(ctx, `SELECT set_config('maintenance_work_mem', $1, true)
				WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes($1)`, indexMemory); err != nil {
				return err
			}
			// The build of the biggest table's key is the load's tail, and
			// by then most workers are idle: let B-tree builds use parallel
			// workers (PostgreSQL 11+), unless the server already allows more.
			if _, err := tx.Exec(ctx, `SELECT set_config('max_parallel_maintenance_workers', $1, true)
				WHERE current_setting('server_version_num')::int >= 110000
				  AND current_setting('max_parallel_maintenance_workers')::int < $1::int`, strconv.Itoa(indexWorkers)); err != nil {
				return err
			}
		}
		for _, stmt := range t.p.IndexDDL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
		if !t.p.Exists {
			if err := setAutovacuum(ctx, tx, t.p.Target, true); err != nil {
				return err
			}
		}
		return r.setTablePhase(ctx, tx, t, PhaseIndexed, ", finished_at = now()")
	})
	if err != nil {
		return fmt.Errorf("building indexes of %s: %w", t.p.Target, err)
	}
	r.event(Event{Table: t.p.Target.String(), Elapsed: time.Since(start), Message: "indexed"})
	return nil
}

// addForeignKeys adds each table's foreign keys, once every table is loaded.
func (r *runner) addForeignKeys(ctx context.Context, ctl *pgx.Conn) error {
	for _, t := range r.tables {
		if t.fkDone {
			continue
		}
		start := time.Now()
		err := pgx.BeginFunc(ctx, ctl, func(tx pgx.Tx) error {
			for _, stmt := range t.p.ForeignKeyDDL {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), err)
				}
			}
			_, err := tx.Exec(ctx, `UPDATE _migration.tables SET fk_done_at = now()
				WHERE task = $1 AND target_schema = $2 AND target_name = $3`,
				r.opt.Task, t.p.Target.Schema, t.p.Target.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("adding foreign keys of %s: %w", t.p.Target, err)
		}
		if len(t.p.ForeignKeyDDL) > 0 {
			r.event(Event{Table: t.p.Target.String(), Elapsed: time.Since(start), Message: "foreign keys added"})
		}
	}
	return nil
}

// setAutovacuum turns autovacuum off on a table the task created, for its
// load, and back to the server's default once its keys are built. Since
// PostgreSQL 13 inserts alone trigger autovacuum, which would otherwise
// vacuum and analyze the table again and again while it fills, taking CPU
// from the load. Only plain tables and their TOAST tables have the setting:
// a partitioned table's partitions are set one by one.
func setAutovacuum(ctx context.Context, tx pgx.Tx, table plan.Name, on bool) error {
	const tables = `SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
		WHERE c.relkind = 'r' AND (c.oid = $1::regclass OR c.oid IN (
			SELECT i.relid FROM pg_catalog.pg_partition_tree($1::regclass) i WHERE i.isleaf))`
	rows, err := tx.Query(ctx, tables, pgx.Identifier{table.Schema, table.Name}.Sanitize())
	if err != nil {
		return fmt.Errorf("listing the tables of %s: %w", table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing the tables of %s: %w", table, err)
	}
	for _, name := range names {
		stmt := "ALTER TABLE " + name + " SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)"
		if on {
			stmt = "ALTER TABLE " + name + " RESET (autovacuum_enabled, toast.autovacuum_enabled)"
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("setting autovacuum of %s: %w", name, err)
		}
	}
	return nil
}
