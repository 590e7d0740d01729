package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// ErrSlotExists is returned by Setup when the task's replication slot is
// already there: a task that already has a slot resumes it instead.
var ErrSlotExists = errors.New("replication slot already exists")

// ErrSlotMissing is returned by Read when the task's slot is gone.
var ErrSlotMissing = errors.New("replication slot does not exist")

// NoReplicaIdentityError is returned by Setup for tables that have neither a
// primary key nor a replica identity: once published, every UPDATE and
// DELETE on them would fail on the source.
type NoReplicaIdentityError struct {
	Tables []string
}

func (e *NoReplicaIdentityError) Error() string {
	return fmt.Sprintf("tables %s have no primary key or replica identity: CDC needs one to find changed rows; "+
		"add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL", strings.Join(e.Tables, ", "))
}

// Tuning of the stream; variables so tests can shorten them.
var (
	statusInterval  = 10 * time.Second
	pollInterval    = 500 * time.Millisecond
	backoffStart    = 200 * time.Millisecond
	backoffCap      = 5 * time.Second
	dropWaitTimeout = 30 * time.Second
	closeTimeout    = 5 * time.Second
	firstBatchBytes = 256 << 10
	// progressInterval is how soon a position newly applied is reported.
	progressInterval = 100 * time.Millisecond
	// What a change and a value cost in memory beyond their data (the
	// Change, its slices and Value headers, the decoder's allocations), so
	// a batch's accounted size is close to what it holds.
	changeOverhead = 160
	valueOverhead  = 40
	// sessionStarted, when set (by tests), is called as each replication
	// session starts streaming.
	sessionStarted func()
)

// SlotName is the replication slot of a task.
func SlotName(task string) string { return "migration_" + task }

// PublicationName is the publication of a task.
func PublicationName(task string) string { return "migration_" + task }

// Source is a PostgreSQL database whose changes a task captures.
type Source struct {
	Config postgres.Config
}

// Cut is where the full load ends and CDC begins (DESIGN.md invariant 1).
type Cut struct {
	// ConsistentPoint is the slot's start: every transaction committed
	// after it streams through the slot, every one before is in Snapshot.
	ConsistentPoint pgoutput.LSN
	// Snapshot is the exported snapshot name for SET TRANSACTION SNAPSHOT.
	Snapshot string
}

// Hold keeps the replication connection that exported the snapshot open.
type Hold struct {
	conn *pgconn.PgConn
}

// Close ends the replication connection; the snapshot is invalid afterwards.
// It is safe to call more than once and on a nil Hold.
func (h *Hold) Close() error {
	if h == nil || h.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := h.conn.Close(ctx)
	h.conn = nil
	return err
}

// SlotStatus is the state of a task's slot and of the source server.
type SlotStatus struct {
	Exists bool
	// ConfirmedFlush is what the target has durably applied, as reported.
	ConfirmedFlush pgoutput.LSN
	RestartLSN     pgoutput.LSN
	// CurrentLSN is pg_current_wal_insert_lsn(): the source's WAL end, the
	// position a catch-up replays to. With asynchronous commit a committed
	// transaction's record may lie beyond the written and flushed positions
	// for a moment (see WaitFlushed).
	CurrentLSN pgoutput.LSN
	// FlushedLSN is pg_current_wal_flush_lsn(): how far decoding can read.
	FlushedLSN pgoutput.LSN
	// LagBytes is CurrentLSN - ConfirmedFlush.
	LagBytes int64
	// RetainedBytes is the WAL the slot keeps: CurrentLSN - RestartLSN.
	RetainedBytes int64
	// WALStatus is reserved, extended, unreserved or lost (PostgreSQL 13+;
	// empty before).
	WALStatus string
	Active    bool
	ActivePID int32
}

// Lost reports a slot invalidated by max_slot_wal_keep_size.
func (s SlotStatus) Lost() bool { return s.WALStatus == "lost" }

func (s Source) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := s.Config.PoolConfig()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.Config.Target(), err)
	}
	return conn, nil
}

func (s Source) replicationConnect(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := s.Config.PoolConfig()
	if err != nil {
		return nil, err
	}
	// Copy gives the copy its own RuntimeParams map.
	cc := cfg.ConnConfig.Config.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("opening replication connection to %s: %w", s.Config.Target(), err)
	}
	return conn, nil
}

func closeQuietly(conn interface{ Close(context.Context) error }) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// qualifiedTable quotes "schema.table" (or a bare table name).
func qualifiedTable(name string) (string, error) {
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		table, schema = schema, ""
	}
	if table == "" || (ok && schema == "") {
		return "", fmt.Errorf("invalid table name %q: want schema.table", name)
	}
	if schema == "" {
		return pgx.Identifier{table}.Sanitize(), nil
	}
	return pgx.Identifier{schema, table}.Sanitize(), nil
}

// Setup creates the task's publication for tables and then its slot with an
// exported snapshot, in that order, so the slot's stream covers the tables
// from its consistent point on. The snapshot is valid while the returned Hold
// is open: import it for the full load, then Close the Hold. The publication
// is updated when it exists; an existing slot is ErrSlotExists.
func (s Source) Setup(ctx context.Context, task string, tables []string) (Cut, *Hold, error) {
	slot, pub := SlotName(task), PublicationName(task)
	if err := pgoutput.ValidateSlotName(slot); err != nil {
		return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: %w", task, err)
	}
	if len(tables) == 0 {
		return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: no tables", task)
	}
	quoted := make([]string, len(tables))
	for i, t := range tables {
		q, err := qualifiedTable(t)
		if err != nil {
			return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: %w", task, err)
		}
		quoted[i] = q
	}

	conn, err := s.connect(ctx)
	if err != nil {
		return Cut{}, nil, err
	}
	defer closeQuietly(conn)

	var slotExists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot).Scan(&slotExists); err != nil {
		return Cut{}, nil, fmt.Errorf("looking up replication slot %s: %w", slot, err)
	}
	if slotExists {
		return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: slot %s: %w", task, slot, ErrSlotExists)
	}

	// pg_class.relreplident 'd' uses the primary key, 'n' nothing; an index
	// ('i') or FULL ('f') always identify a row.
	rows, err := conn.Query(ctx, `
		SELECT c.oid::regclass::text
		FROM unnest($1::text[]) AS t(name)
		JOIN pg_class c ON c.oid = to_regclass(t.name)
		WHERE c.relreplident = 'n'
		   OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
		ORDER BY 1`, quoted)
	if err != nil {
		return Cut{}, nil, fmt.Errorf("checking replica identities for task %q: %w", task, err)
	}
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return Cut{}, nil, fmt.Errorf("checking replica identities for task %q: %w", task, err)
	}
	if len(bad) > 0 {
		return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: %w", task, &NoReplicaIdentityError{Tables: bad})
	}

	var pubExists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, pub).Scan(&pubExists); err != nil {
		return Cut{}, nil, fmt.Errorf("looking up publication %s: %w", pub, err)
	}
	// A partitioned table's changes are published as its root's, the
	// table the plan copies and the target has.
	pubIdent := pgx.Identifier{pub}.Sanitize()
	sql := "CREATE PUBLICATION " + pubIdent + " FOR TABLE " + strings.Join(quoted, ", ") + " WITH (publish_via_partition_root = true)"
	if pubExists {
		sql = "ALTER PUBLICATION " + pubIdent + " SET TABLE " + strings.Join(quoted, ", ") +
			"; ALTER PUBLICATION " + pubIdent + " SET (publish_via_partition_root = true)"
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return Cut{}, nil, fmt.Errorf("creating publication %s: %w", pub, err)
	}

	repl, err := s.replicationConnect(ctx)
	if err != nil {
		return Cut{}, nil, err
	}
	created, err := pgoutput.CreateSlot(ctx, repl, slot, true)
	if err != nil {
		closeQuietly(repl)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: a concurrent Setup won
			return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: slot %s: %w", task, slot, ErrSlotExists)
		}
		return Cut{}, nil, fmt.Errorf("setting up CDC for task %q: %w", task, err)
	}
	return Cut{ConsistentPoint: created.ConsistentPoint, Snapshot: created.SnapshotName}, &Hold{conn: repl}, nil
}

// SlotStatus reports the task's slot and the source's WAL end; Exists is
// false when there is no slot.
func (s Source) SlotStatus(ctx context.Context, task string) (SlotStatus, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return SlotStatus{}, err
	}
	defer closeQuietly(conn)
	return ReadSlotStatus(ctx, conn, task)
}

// flushPoll is how often WaitFlushed reads the source's flushed position.
const flushPoll = 10 * time.Millisecond

// WaitFlushed waits, up to limit, until the source has flushed its WAL
// through end (an insert position read before), and returns the flushed
// position it last read. Decoding reads flushed WAL only, and with
// asynchronous commit a committed transaction's record waits for the WAL
// writer (at most three wal_writer_delay, 600 ms by default): a count of
// the backlog taken before would miss it, while the catch-up, which replays
// to the insert position, would apply it. A WAL page header at end (the
// insert position of an idle server at a page boundary) is never flushed on
// its own and is not waited for. Past limit the position reached is
// returned: WAL of a transaction still open may stay unflushed.
func WaitFlushed(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, end, flushed pgoutput.LSN, limit time.Duration) (pgoutput.LSN, error) {
	if flushed >= end {
		return flushed, nil
	}
	deadline := time.Now().Add(limit)
	for {
		var text string
		var blockSize int64
		if err := q.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn()::text, current_setting('wal_block_size')::bigint`).Scan(&text, &blockSize); err != nil {
			return flushed, fmt.Errorf("reading the source's flushed WAL position: %w", err)
		}
		lsn, err := pgoutput.ParseLSN(text)
		if err != nil {
			return flushed, err
		}
		flushed = lsn
		if flushed >= reachFor(end, blockSize) || !time.Now().Before(deadline) {
			return flushed, nil
		}
		t := time.NewTimer(flushPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return flushed, ctx.Err()
		case <-t.C:
		}
	}
}

// ReadSlotStatus is SlotStatus in one round trip on a session already open
// (q). wal_status is read from the row as JSON, so the one query also suits
// servers before PostgreSQL 13, which lack it.
func ReadSlotStatus(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, task string) (SlotStatus, error) {
	slot := SlotName(task)
	var (
		st                 SlotStatus
		cur, flushed       string
		confirmed, restart *string
		lag, retained      *int64
		pid                *int32
	)
	err := q.QueryRow(ctx, `
		WITH w AS (SELECT pg_current_wal_insert_lsn() AS lsn, pg_current_wal_flush_lsn() AS flushed)
		SELECT w.lsn::text, w.flushed::text, s.slot_name IS NOT NULL, s.confirmed_flush_lsn::text, s.restart_lsn::text,
		       pg_wal_lsn_diff(w.lsn, s.confirmed_flush_lsn)::bigint,
		       pg_wal_lsn_diff(w.lsn, s.restart_lsn)::bigint,
		       coalesce(to_jsonb(s) ->> 'wal_status', ''), coalesce(s.active, false), s.active_pid
		FROM w LEFT JOIN pg_replication_slots s ON s.slot_name = $1`, slot).
		Scan(&cur, &flushed, &st.Exists, &confirmed, &restart, &lag, &retained, &st.WALStatus, &st.Active, &pid)
	if err != nil {
		return SlotStatus{}, fmt.Errorf("reading replication slot %s: %w", slot, err)
	}
	for _, l := range []struct {
		text *string
		lsn  *pgoutput.LSN
	}{{&cur, &st.CurrentLSN}, {&flushed, &st.FlushedLSN}, {confirmed, &st.ConfirmedFlush}, {restart, &st.RestartLSN}} {
		if l.text != nil {
			if *l.lsn, err = pgoutput.ParseLSN(*l.text); err != nil {
				return SlotStatus{}, err
			}
		}
	}
	if lag != nil {
		st.LagBytes = *lag
	}
	if retained != nil {
		st.RetainedBytes = *retained
	}
	if pid != nil {
		st.ActivePID = *pid
	}
	return st, nil
}

// Teardown drops the task's slot, waiting a bounded time for a reader to
// let go of it, and its publication. Missing ones are not errors.
func (s Source) Teardown(ctx context.Context, task string) error {
	slot, pub := SlotName(task), PublicationName(task)
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer closeQuietly(conn)

	// Poll rather than DROP_REPLICATION_SLOT … WAIT: a backend waiting on
	// a slot cannot be called off, and would drop it after we gave up.
	err = whileSlotInUse(ctx, func() error {
		_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42704" { // undefined_object: dropped meanwhile
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("dropping replication slot %s: %w", slot, err)
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
		return fmt.Errorf("dropping publication %s: %w", pub, err)
	}
	return nil
}

// Advance confirms lsn on the task's idle slot, so the server can recycle
// WAL the task has nothing to apply from. The caller must have applied
// everything committed before lsn. It never moves the slot backwards.
func (s Source) Advance(ctx context.Context, task string, lsn pgoutput.LSN) error {
	slot := SlotName(task)
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer closeQuietly(conn)
	var confirmed *string
	err = conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("advancing replication slot %s: %w", slot, ErrSlotMissing)
	}
	if err != nil {
		return fmt.Errorf("advancing replication slot %s: %w", slot, err)
	}
	if confirmed != nil {
		cur, err := pgoutput.ParseLSN(*confirmed)
		if err != nil {
			return err
		}
		if cur >= lsn {
			return nil
		}
	}
	// The walsender of a Read that just ended may hold the slot a moment longer.
	err = whileSlotInUse(ctx, func() error {
		_, err := conn.Exec(ctx, `SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, slot, lsn.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("advancing replication slot %s to %s: %w", slot, lsn, err)
	}
	return nil
}

// whileSlotInUse runs f again while it fails with object_in_use, that is
// while a walsender still holds the slot (a reader streaming from it, or one
// whose connection just closed), for at most dropWaitTimeout.
func whileSlotInUse(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(dropWaitTimeout)
	// A walsender whose client just left lets go within milliseconds.
	wait := 5 * time.Millisecond
	for {
		err := f()
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still in use after %s: %w", dropWaitTimeout, err)
		}
		t := time.NewTimer(wait)
		wait = min(2*wait, backoffStart)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Read streams the task's slot from `from` (the last applied commit LSN; 0
// means the slot's confirmed position) until every transaction committed at
// or before until has been passed to fn. fn gets whole transactions in
// commit order, in batches of about maxBytes of values; a transaction larger
// than maxBytes comes alone. Standby status updates report only applied(),
// what the target durably committed. A stream cut by a source restart is
// reopened with exponential backoff until ctx ends.
func (s Source) Read(ctx context.Context, task string, from, until pgoutput.LSN, maxBytes int,
	fn func([]Txn) error, applied func() pgoutput.LSN) error {
	return s.ReadSettled(ctx, task, from, until, maxBytes, fn, applied, nil)
}

// ReadSettled is Read that, once the last transaction is passed to fn,
// calls settle before it ends the stream: settle waits until the batches
// handed over are applied and returns the position to confirm (until, when
// all is applied) and the error that stopped applying. Confirming on the
// open stream spares a connection and a second decoding of the WAL that
// advancing the slot afterwards would take. settle is not called when the
// stream ends early or there was nothing to read.
func (s Source) ReadSettled(ctx context.Context, task string, from, until pgoutput.LSN, maxBytes int,
	fn func([]Txn) error, applied func() pgoutput.LSN, settle func() (pgoutput.LSN, error)) error {
	r := &reader{settle: settle,
		src: s, slot: SlotName(task), pub: PublicationName(task),
		from: from, until: until, maxBytes: maxBytes, fn: fn, applied: applied,
		// The first batches are smaller, so that applying starts while
		// the next ones are read instead of after a whole batch.
		limit: min(maxBytes, firstBatchBytes),
	}
	backoff := backoffStart
	for {
		progressed, err := r.session(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("reading replication slot %s: %w", r.slot, errors.Join(ctx.Err(), err))
		}
		if !retryable(err) {
			return fmt.Errorf("reading replication slot %s: %w", r.slot, err)
		}
		if progressed {
			backoff = backoffStart
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("reading replication slot %s: reconnecting after %v: %w", r.slot, err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, backoffCap)
	}
}

// retryable reports an error that a new connection may cure: the network
// or the server going away (a restart, an administrator's terminate), or a
// slot still held by the walsender of a connection that just died.
func retryable(err error) bool {
	var fe *fnError
	if errors.As(err, &fe) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errStreamEnded) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57"):
			return true
		case pgErr.Code == "55006": // object_in_use: the old walsender still holds the slot
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	return pgconn.SafeToRetry(err)
}

var errStreamEnded = errors.New("server ended the replication stream")

// fnError marks an error of the caller's fn, never retried.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

type relation struct {
	schema, table string
	columns       []Column
}

type reader struct {
	src         Source
	slot, pub   string
	from, until pgoutput.LSN
	maxBytes    int
	// limit is the current batch's size: firstBatchBytes, doubling up to maxBytes.
	limit   int
	fn      func([]Txn) error
	applied func() pgoutput.LSN
	settle  func() (pgoutput.LSN, error)
	// settled is what settle returned: reported from then on.
	settled pgoutput.LSN
	// reported is the position last reported to the server.
	reported pgoutput.LSN

	// confirmed is the slot's position when the session started: reports
	// never go below it, even before the target applied anything.
	confirmed pgoutput.LSN
	// reach is the decoding position that proves every commit up to until
	// was read: until itself, or the start of its WAL page when until
	// points into the page header (a WAL end read at a page boundary),
	// which no record can end inside.
	reach pgoutput.LSN

	relations map[uint32]*relation
	mem       arena
	txn       *Txn
	txnBytes  int
	batch     []Txn
	batchSize int
}

// session runs one replication connection. It returns nil when done, and
// whether it delivered anything (to reset the backoff).
func (r *reader) session(ctx context.Context) (progressed bool, err error) {
	if err := r.loadConfirmed(ctx); err != nil {
		return false, err
	}
	if r.from != 0 && r.from >= r.until || r.from == 0 && r.confirmed >= r.until {
		return false, nil
	}
	conn, err := r.src.replicationConnect(ctx)
	if err != nil {
		return false, err
	}
	defer closeQuietly(conn)

	if err := pgoutput.StartReplicationWithOptions(ctx, conn, r.slot, r.from, pgoutput.ReplicationOptions{
		ProtoVersion: 1, Publications: []string{r.pub},
	}); err != nil {
		return false, err
	}
	if sessionStarted != nil {
		sessionStarted()
	}
	// A new session gets every Relation message again.
	r.relations = map[uint32]*relation{}
	r.txn, r.txnBytes = nil, 0

	startDelivered := r.from
	defer func() {
		progressed = r.from != startDelivered
	}()

	if err := r.status(ctx, conn, true); err != nil {
		return false, err
	}
	// Receiving watches no context: pgconn would set up a watch for every
	// message, which costs more than decoding it. A read deadline, moved
	// on as messages come, notices an idle stream instead, and ctx ending
	// cuts the read short through the same deadline.
	netConn := conn.Conn()
	stop := context.AfterFunc(ctx, func() { _ = netConn.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = netConn.SetReadDeadline(time.Time{})
		}
	}()
	lastStatus := time.Now()
	var deadlineSet time.Time
	for {
		now := time.Now()
		// Report what the target applied soon after it did, not only every
		// statusInterval: the server moves the slot's restart position
		// only on reports, so the WAL it keeps, and what the next stream
		// or count decodes again, follow the applied position.
		if d := now.Sub(lastStatus); d >= statusInterval || d >= progressInterval && r.applied() > r.reported {
			if err := r.status(ctx, conn, false); err != nil {
				return false, err
			}
			lastStatus = now
		}
		if now.Sub(deadlineSet) >= pollInterval/4 && ctx.Err() == nil {
			if err := netConn.SetReadDeadline(now.Add(pollInterval)); err != nil {
				return false, err
			}
			deadlineSet = now
		}
		msg, err := pgoutput.Receive(context.Background(), conn)
		if err != nil {
			if ctx.Err() != nil {
				return false, r.flushBefore(ctx.Err())
			}
			if pgconn.Timeout(err) {
				// Idle: hand over what is complete and ask the server where
				// its decoding stands (the keepalive reply).
				if err := r.flush(); err != nil {
					return false, err
				}
				if err := r.status(ctx, conn, true); err != nil {
					return false, err
				}
				lastStatus, deadlineSet = time.Now(), time.Time{}
				continue
			}
			return false, r.flushBefore(err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			done, err := r.handle(ctx, conn, msg.Data)
			if err != nil {
				return false, err
			}
			if done {
				if err := r.flush(); err != nil {
					return false, err
				}
				return false, r.finish(ctx, conn)
			}
		case *pgproto3.CopyDone:
			return false, r.flushBefore(errStreamEnded)
		default:
			// NoticeResponse, ParameterStatus: nothing to do.
		}
	}
}

// flushBefore hands over the complete transactions before a stream error,
// so a reconnect resumes after them.
func (r *reader) flushBefore(err error) error {
	if ferr := r.flush(); ferr != nil {
		return ferr
	}
	return err
}

func (r *reader) loadConfirmed(ctx context.Context) error {
	conn, err := r.src.connect(ctx)
	if err != nil {
		return err
	}
	defer closeQuietly(conn)
	var confirmed *string
	err = conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, r.slot).Scan(&confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrSlotMissing
	}
	if err != nil {
		return err
	}
	if confirmed != nil {
		if r.confirmed, err = pgoutput.ParseLSN(*confirmed); err != nil {
			return err
		}
	}
	var blockSize int64
	if err := conn.QueryRow(ctx, `SELECT current_setting('wal_block_size')::bigint`).Scan(&blockSize); err != nil {
		return err
	}
	r.reach = reachFor(r.until, blockSize)
	return nil
}

// reachFor is the decoding position that proves every commit up to until
// was read (see reader.reach).
func reachFor(until pgoutput.LSN, blockSize int64) pgoutput.LSN {
	if blockSize <= 0 {
		return until
	}
	if off := pgoutput.LSN(uint64(until) % uint64(blockSize)); off <= longPageHeaderSize {
		return until - off
	}
	return until
}

// longPageHeaderSize is the size of a WAL segment's first page header (the
// other pages' headers are shorter).
const longPageHeaderSize = 40

// status reports applied() (never below the slot's position at start).
func (r *reader) status(ctx context.Context, conn *pgconn.PgConn, reply bool) error {
	pos := r.applied()
	pos = max(pos, r.confirmed, r.settled)
	r.reported = pos
	st := pgoutput.Applied(pos)
	st.ReplyRequested = reply
	return pgoutput.SendStandbyStatus(ctx, conn, st)
}

// finish reports the final position and waits for the server's answer, so
// the slot's confirmed_flush_lsn is set when Read returns.
func (r *reader) finish(ctx context.Context, conn *pgconn.PgConn) error {
	var settleErr error
	if r.settle != nil {
		type result struct {
			pos pgoutput.LSN
			err error
		}
		done := make(chan result, 1)
		go func() {
			pos, err := r.settle()
			done <- result{pos, err}
		}()
		// Applying the last batch may take a while: keep the server
		// informed, or it drops a silent client after wal_sender_timeout.
		tick := time.NewTicker(statusInterval)
	wait:
		for {
			select {
			case res := <-done:
				r.settled, settleErr = res.pos, res.err
				break wait
			case <-tick.C:
				if err := r.status(ctx, conn, false); err != nil {
					tick.Stop()
					res := <-done
					r.settled = res.pos
					return errors.Join(err, res.err)
				}
			}
		}
		tick.Stop()
	}
	if err := r.status(ctx, conn, true); err != nil {
		return errors.Join(err, settleErr)
	}
	// The position is on its way either way; a lost answer costs nothing.
	// (The session's watch of ctx still cuts this read short.)
	if err := conn.Conn().SetReadDeadline(time.Now().Add(closeTimeout)); err == nil {
		for ctx.Err() == nil {
			msg, rerr := pgoutput.Receive(context.Background(), conn)
			if rerr != nil {
				break
			}
			if cd, ok := msg.(*pgproto3.CopyData); !ok || len(cd.Data) > 0 && cd.Data[0] == 'k' {
				break
			}
		}
	}
	if settleErr != nil {
		return &fnError{err: settleErr}
	}
	return nil
}

// handle processes one CopyData payload; done is true once everything up to
// until is delivered.
func (r *reader) handle(ctx context.Context, conn *pgconn.PgConn, data []byte) (done bool, err error) {
	if len(data) > 0 && data[0] == 'w' {
		x, err := pgoutput.ParseXLogData(data)
		if err != nil {
			return false, err
		}
		// Row changes, nearly all of the stream, are decoded into the
		// batch's arena; the rest through Parse.
		if len(x.Data) > 0 && (x.Data[0] == 'I' || x.Data[0] == 'U' || x.Data[0] == 'D') {
			rc, _, err := pgoutput.ParseRowChange(r.mem.bytes(x.Data), r.mem.values)
			if err != nil {
				return false, fmt.Errorf("at %s: %w", x.WALStart, err)
			}
			return false, r.rowChange(rc)
		}
		m, err := pgoutput.Parse(x.Data)
		if err != nil {
			return false, fmt.Errorf("at %s: %w", x.WALStart, err)
		}
		return r.message(m)
	}
	sm, err := pgoutput.ParseStreamMessage(data)
	if err != nil {
		return false, err
	}
	if k, ok := sm.(*pgoutput.PrimaryKeepalive); ok {
		if r.txn == nil && k.ServerWALEnd >= r.reach {
			return true, nil
		}
		if k.ReplyRequested {
			return false, r.status(ctx, conn, false)
		}
	}
	return false, nil
}

// rowChange adds an Insert, Update or Delete to the open transaction.
func (r *reader) rowChange(rc pgoutput.RowChange) error {
	switch rc.Type {
	case pgoutput.MessageInsert:
		return r.change(rc.RelationID, Change{Op: Insert, New: rc.New})
	case pgoutput.MessageUpdate:
		c := Change{Op: Update, New: rc.New}
		if rc.OldKind != pgoutput.OldTupleNone {
			c.Old, c.OldIsKey = rc.Old, rc.OldKind == pgoutput.OldTupleKey
		}
		return r.change(rc.RelationID, c)
	default:
		return r.change(rc.RelationID, Change{Op: Delete, Old: rc.Old, OldIsKey: rc.OldKind == pgoutput.OldTupleKey})
	}
}

func (r *reader) message(m pgoutput.Message) (done bool, err error) {
	switch m := m.(type) {
	case *pgoutput.Begin:
		r.txn = &Txn{XID: m.Xid, CommitLSN: m.FinalLSN, CommitTime: m.CommitTime}
		r.txnBytes = 0
		r.mem.begin()
	case *pgoutput.Commit:
		txn := r.txn
		r.txn = nil
		if txn == nil {
			return false, fmt.Errorf("commit at %s without begin", m.CommitLSN)
		}
		txn.CommitLSN, txn.EndLSN, txn.CommitTime = m.CommitLSN, m.TransactionEndLSN, m.CommitTime
		txn.Changes = r.mem.commit()
		if txn.CommitLSN > r.until {
			// Committed after the WAL end this Read was asked for: a
			// later Read delivers it.
			return true, nil
		}
		// The server restarts at the slot's position, which may be before
		// what the caller already applied.
		if r.from == 0 || txn.CommitLSN > r.from {
			if len(txn.Changes) > 0 {
				if err := r.add(*txn, r.txnBytes); err != nil {
					return false, err
				}
			}
			r.from = txn.CommitLSN
		}
		return txn.EndLSN >= r.reach, nil
	case *pgoutput.Relation:
		cols := make([]Column, len(m.Columns))
		for i, c := range m.Columns {
			cols[i] = Column{Name: c.Name, TypeOID: c.TypeOID, TypeMod: c.TypeMod, Key: c.IsKey()}
		}
		r.relations[m.RelationID] = &relation{schema: m.Namespace, table: m.Name, columns: cols}
	case *pgoutput.Truncate:
		for _, id := range m.RelationIDs {
			if err := r.change(id, Change{Op: Truncate, Cascade: m.Cascade(), RestartIdentity: m.RestartIdentity()}); err != nil {
				return false, err
			}
		}
	default:
		// Origin, Type and logical decoding messages carry nothing to apply.
	}
	return false, nil
}

func (r *reader) change(relID uint32, c Change) error {
	if r.txn == nil {
		return fmt.Errorf("%c change outside a transaction", c.Op)
	}
	rel, ok := r.relations[relID]
	if !ok {
		return fmt.Errorf("change to relation %d before its Relation message", relID)
	}
	c.Schema, c.Table, c.Columns = rel.schema, rel.table, rel.columns
	if len(c.New) > len(c.Columns) || len(c.Old) > len(c.Columns) {
		return fmt.Errorf("change to %s.%s has more values than its %d columns", rel.schema, rel.table, len(c.Columns))
	}
	r.mem.change(c)
	r.txnBytes += changeSize(c)
	// Hand over the finished transactions as soon as they and the one
	// being read would pass maxBytes together, not only at its commit.
	if len(r.batch) > 0 && r.batchSize+r.txnBytes > r.limit {
		return r.flush()
	}
	return nil
}

func changeSize(c Change) int {
	n := changeOverhead
	for _, v := range c.New {
		n += valueOverhead + len(v.Data)
	}
	for _, v := range c.Old {
		n += valueOverhead + len(v.Data)
	}
	return n
}

// add appends a committed transaction to the batch, handing the batch over
// first when the transaction would take it past maxBytes.
func (r *reader) add(txn Txn, size int) error {
	if len(r.batch) > 0 && r.batchSize+size > r.limit {
		if err := r.flush(); err != nil {
			return err
		}
	}
	r.batch = append(r.batch, txn)
	r.batchSize += size
	if r.batchSize >= r.limit {
		return r.flush()
	}
	return nil
}

func (r *reader) flush() error {
	if len(r.batch) == 0 {
		return nil
	}
	batch := r.batch
	r.batch, r.batchSize = nil, 0
	r.limit = min(2*r.limit, r.maxBytes)
	if err := r.fn(batch); err != nil {
		return &fnError{err: err}
	}
	return nil
}
