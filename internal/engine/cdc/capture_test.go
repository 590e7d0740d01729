package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
)

func TestSlotAndPublicationNames(t *testing.T) {
	if got := SlotName("shop"); got != "migration_shop" {
		t.Errorf("SlotName = %q", got)
	}
	if got := PublicationName("shop"); got != "migration_shop" {
		t.Errorf("PublicationName = %q", got)
	}
}

// collector stands in for the apply side: it keeps what fn got and
// "commits" each batch at once, so applied() is the last commit LSN.
type collector struct {
	mu      sync.Mutex
	batches [][]Txn
	last    pgoutput.LSN
	onBatch func(n int) error
}

func (c *collector) fn(batch []Txn) error {
	c.mu.Lock()
	c.batches = append(c.batches, batch)
	c.last = batch[len(batch)-1].CommitLSN
	n := len(c.batches)
	c.mu.Unlock()
	if c.onBatch != nil {
		return c.onBatch(n)
	}
	return nil
}

func (c *collector) applied() pgoutput.LSN {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *collector) txns() []Txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []Txn
	for _, b := range c.batches {
		all = append(all, b...)
	}
	return all
}

func readAll(t *testing.T, src Source, task string, from, until pgoutput.LSN, maxBytes int, c *collector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := src.Read(ctx, task, from, until, maxBytes, c.fn, c.applied); err != nil {
		t.Fatalf("Read: %v", err)
	}
}

func setup(t *testing.T, src Source, task string, tables ...string) Cut {
	t.Helper()
	cut, hold, err := src.Setup(t.Context(), task, tables)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if err := hold.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := src.Teardown(context.Background(), task); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	return cut
}

func text(v Value) string {
	switch v.Kind {
	case 'n':
		return "NULL"
	case 'u':
		return "<unchanged>"
	}
	return string(v.Data)
}

// TestSetupConsistentCut checks invariant 1: the exported snapshot holds
// exactly the rows committed before Setup, the stream exactly the later ones.
func TestSetupConsistentCut(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "cut"
	exec(t, db, `CREATE SCHEMA shop; CREATE TABLE shop."Items" (id int PRIMARY KEY, v text);
		INSERT INTO shop."Items" SELECT g, 'before' FROM generate_series(1, 3) g`)

	cut, hold, err := src.Setup(t.Context(), task, []string{`shop.Items`})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := src.Teardown(context.Background(), task); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	if cut.Snapshot == "" || cut.ConsistentPoint == 0 {
		t.Fatalf("Setup = %+v", cut)
	}
	// Committed after Setup, before the snapshot is read: must not show.
	exec(t, db, `INSERT INTO shop."Items" VALUES (4, 'after')`)
	exec(t, db, `INSERT INTO shop."Items" VALUES (5, 'after')`)

	conn := sqlConn(t, db)
	tx, err := conn.BeginTx(t.Context(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "SET TRANSACTION SNAPSHOT '"+cut.Snapshot+"'"); err != nil {
		t.Fatalf("importing snapshot: %v", err)
	}
	rows, err := tx.Query(t.Context(), `SELECT id FROM shop."Items" ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(t.Context())
	if !slices.Equal(ids, []int32{1, 2, 3}) {
		t.Errorf("snapshot sees ids %v, want [1 2 3]", ids)
	}
	if err := hold.Close(); err != nil {
		t.Fatal(err)
	}

	var c collector
	readAll(t, src, task, 0, walEnd(t, db), 1<<20, &c)
	var got []string
	for _, txn := range c.txns() {
		if txn.CommitLSN < cut.ConsistentPoint {
			t.Errorf("txn %d commits at %s, before the consistent point %s", txn.XID, txn.CommitLSN, cut.ConsistentPoint)
		}
		for _, ch := range txn.Changes {
			got = append(got, fmt.Sprintf("%c %s.%s %s", ch.Op, ch.Schema, ch.Table, text(ch.New[0])))
		}
	}
	want := []string{"I shop.Items 4", "I shop.Items 5"}
	if !slices.Equal(got, want) {
		t.Errorf("stream = %q, want %q", got, want)
	}
}

func describe(ch Change) string {
	names := make([]string, len(ch.Columns))
	for i, c := range ch.Columns {
		names[i] = c.Name
	}
	vals := func(vs []Value) string {
		s := make([]string, len(vs))
		for i, v := range vs {
			s[i] = text(v)
			if len(s[i]) > 12 {
				s[i] = fmt.Sprintf("%s…(%d)", s[i][:3], len(s[i]))
			}
		}
		return strings.Join(s, ",")
	}
	out := fmt.Sprintf("%c %s(%s)", ch.Op, ch.Table, strings.Join(names, ","))
	if ch.Old != nil {
		kind := "full"
		if ch.OldIsKey {
			kind = "key"
		}
		out += fmt.Sprintf(" old[%s]=%s", kind, vals(ch.Old))
	}
	if ch.New != nil {
		out += " new=" + vals(ch.New)
	}
	if ch.Op == Truncate {
		out += fmt.Sprintf(" cascade=%v restart=%v", ch.Cascade, ch.RestartIdentity)
	}
	return out
}

func TestReadChanges(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "changes"
	exec(t, db, `
		CREATE TABLE t (id int PRIMARY KEY, name text, big text);
		ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
		CREATE TABLE f (id int PRIMARY KEY, v text);
		ALTER TABLE f REPLICA IDENTITY FULL;
		CREATE TABLE other (id int PRIMARY KEY)`)
	setup(t, src, task, "public.t", "public.f")

	for _, sql := range []string{
		`INSERT INTO t VALUES (1, 'a', repeat('x', 10000))`,
		`UPDATE t SET name = 'b' WHERE id = 1`,
		`UPDATE t SET id = 2 WHERE id = 1`,
		`INSERT INTO other VALUES (1)`, // not published: no transaction
		`DELETE FROM t WHERE id = 2`,
		`BEGIN; INSERT INTO f VALUES (1, 'v'); UPDATE f SET v = 'w'; DELETE FROM f; SELECT pg_logical_emit_message(true, 'p', 'ignored'); COMMIT`,
		`ALTER TABLE t ADD COLUMN extra int`,
		`INSERT INTO t VALUES (3, 'c', 's', 7)`,
		`TRUNCATE t, f RESTART IDENTITY`,
	} {
		exec(t, db, sql)
	}
	until := walEnd(t, db)
	exec(t, db, `INSERT INTO t VALUES (4, 'after until', NULL, NULL)`)

	// maxBytes 1: every transaction comes in its own batch.
	var c collector
	readAll(t, src, task, 0, until, 1, &c)

	want := [][]string{
		{"I t(id,name,big) new=1,a,xxx…(10000)"},
		{"U t(id,name,big) new=1,b,<unchanged>"},
		{"U t(id,name,big) old[key]=1,NULL,NULL new=2,b,<unchanged>"},
		{"D t(id,name,big) old[key]=2,NULL,NULL"},
		{"I f(id,v) new=1,v", "U f(id,v) old[full]=1,v new=1,w", "D f(id,v) old[full]=1,w"},
		{"I t(id,name,big,extra) new=3,c,s,7"},
		{"T t(id,name,big,extra) cascade=false restart=true", "T f(id,v) cascade=false restart=true"},
	}
	txns := c.txns()
	var got [][]string
	for i, txn := range txns {
		var g []string
		for _, ch := range txn.Changes {
			g = append(g, describe(ch))
		}
		got = append(got, g)
		if i > 0 && txn.CommitLSN <= txns[i-1].CommitLSN {
			t.Errorf("txn %d commits at %s, not after %s", i, txn.CommitLSN, txns[i-1].CommitLSN)
		}
		if txn.CommitLSN > until || txn.EndLSN <= txn.CommitLSN || txn.CommitTime.IsZero() || txn.XID == 0 {
			t.Errorf("txn %d = %+v (until %s)", i, txn, until)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes:\n got %q\nwant %q", got, want)
	}
	if len(c.batches) != len(want) {
		t.Errorf("%d batches with maxBytes 1, want one per transaction (%d)", len(c.batches), len(want))
	}
	if key := txns[0].Changes[0].Columns[0]; !key.Key || key.TypeOID != 23 {
		t.Errorf("column id = %+v, want a key of type int4", key)
	}

	// Standby status reports what applied() returned, no further.
	last := txns[len(txns)-1].CommitLSN
	if got := confirmedFlush(t, db, task); got != last {
		t.Errorf("confirmed_flush_lsn = %s, want the applied %s", got, last)
	}

	// A large maxBytes puts several whole transactions in one batch.
	exec(t, db, `INSERT INTO t VALUES (5, 'e', NULL, NULL)`)
	exec(t, db, `INSERT INTO t VALUES (6, 'f', NULL, NULL)`)
	var r collector
	readAll(t, src, task, last, walEnd(t, db), 1<<20, &r)
	var ids []string
	for _, txn := range r.txns() {
		for _, ch := range txn.Changes {
			ids = append(ids, text(ch.New[0]))
		}
	}
	if !slices.Equal(ids, []string{"4", "5", "6"}) {
		t.Errorf("resumed read got ids %v, want [4 5 6]", ids)
	}
	if len(r.batches) != 1 {
		t.Errorf("%d batches with a large maxBytes, want 1", len(r.batches))
	}
}

// TestReadApplied checks that the slot confirms only what applied() says.
func TestReadApplied(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "applied"
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`)
	setup(t, src, task, "public.t")
	for i := range 5 {
		exec(t, db, `INSERT INTO t VALUES ($1)`, i)
	}
	until := walEnd(t, db)

	var c collector
	var half pgoutput.LSN
	applied := func() pgoutput.LSN {
		c.mu.Lock()
		defer c.mu.Unlock()
		return half
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := src.Read(ctx, task, 0, until, 1, func(b []Txn) error {
		if err := c.fn(b); err != nil {
			return err
		}
		if text(b[0].Changes[0].New[0]) == "2" {
			c.mu.Lock()
			half = b[0].CommitLSN
			c.mu.Unlock()
		}
		return nil
	}, applied)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.txns()) != 5 || half == 0 {
		t.Fatalf("got %d transactions", len(c.txns()))
	}
	if got := confirmedFlush(t, db, task); got != half {
		t.Errorf("confirmed_flush_lsn = %s, want the applied %s (not beyond)", got, half)
	}

	// Reading from the slot's position (from = 0) redelivers what was not
	// confirmed; from = the last applied commit skips it.
	var again collector
	readAll(t, src, task, half, walEnd(t, db), 1<<20, &again)
	var ids []string
	for _, txn := range again.txns() {
		ids = append(ids, text(txn.Changes[0].New[0]))
	}
	if !slices.Equal(ids, []string{"3", "4"}) {
		t.Errorf("read from %s got ids %v, want [3 4]", half, ids)
	}
}

func TestReadFnError(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "fnerr"
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`)
	setup(t, src, task, "public.t")
	exec(t, db, `INSERT INTO t VALUES (1)`)
	boom := errors.New("boom")
	c := collector{onBatch: func(int) error { return boom }}
	err := src.Read(t.Context(), task, 0, walEnd(t, db), 1, c.fn, c.applied)
	if !errors.Is(err, boom) {
		t.Fatalf("Read = %v, want the fn error", err)
	}
}

func TestSlotLifecycle(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "life"
	ctx := t.Context()
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, v text)`)

	if st, err := src.SlotStatus(ctx, task); err != nil || st.Exists || st.CurrentLSN == 0 {
		t.Fatalf("SlotStatus before Setup = %+v, %v", st, err)
	}
	cut := setup(t, src, task, "t")
	st, err := src.SlotStatus(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || st.ConfirmedFlush != cut.ConsistentPoint || st.WALStatus != "reserved" || st.Active ||
		st.CurrentLSN < cut.ConsistentPoint || st.RestartLSN == 0 || st.RestartLSN > st.ConfirmedFlush {
		t.Errorf("SlotStatus after Setup = %+v (cut %+v)", st, cut)
	}

	exec(t, db, `INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g`)
	st2, err := src.SlotStatus(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if st2.LagBytes < 100_000 || st2.RetainedBytes < st2.LagBytes ||
		st2.LagBytes != int64(st2.CurrentLSN-st2.ConfirmedFlush) {
		t.Errorf("SlotStatus after writes = %+v", st2)
	}

	// Setup again: the publication is updated, the slot is not replaced.
	exec(t, db, `CREATE TABLE u (id int PRIMARY KEY)`)
	if _, _, err := src.Setup(ctx, task, []string{"public.t", "public.u"}); !errors.Is(err, ErrSlotExists) {
		t.Errorf("second Setup = %v, want ErrSlotExists", err)
	}

	// Advance confirms an idle slot's position.
	target := queryLSN(t, db, `SELECT pg_current_wal_flush_lsn()::text`)
	if err := src.Advance(ctx, task, target); err != nil {
		t.Fatal(err)
	}
	if got := confirmedFlush(t, db, task); got != target {
		t.Errorf("confirmed_flush_lsn after Advance = %s, want %s", got, target)
	}
	if err := src.Advance(ctx, task, cut.ConsistentPoint); err != nil {
		t.Fatal(err)
	}
	if got := confirmedFlush(t, db, task); got != target {
		t.Errorf("Advance moved the slot back to %s", got)
	}

	if err := src.Teardown(ctx, task); err != nil {
		t.Fatal(err)
	}
	var slots, pubs int
	if err := sqlConn(t, db).QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1),
		(SELECT count(*) FROM pg_publication WHERE pubname = $2)`, SlotName(task), PublicationName(task)).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Errorf("after Teardown: %d slots, %d publications", slots, pubs)
	}
	if err := src.Teardown(ctx, task); err != nil {
		t.Errorf("Teardown of a missing task = %v", err)
	}
	if err := src.Read(ctx, task, 0, target+1, 1, func([]Txn) error { return nil }, func() pgoutput.LSN { return 0 }); !errors.Is(err, ErrSlotMissing) {
		t.Errorf("Read without a slot = %v, want ErrSlotMissing", err)
	}
}

func TestSetupNeedsReplicaIdentity(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	exec(t, db, `CREATE TABLE keyless (v text); CREATE TABLE full_ok (v text);
		ALTER TABLE full_ok REPLICA IDENTITY FULL; CREATE TABLE keyed (id int PRIMARY KEY)`)
	_, hold, err := src.Setup(t.Context(), "ident", []string{"public.keyless", "public.full_ok", "public.keyed"})
	var nri *NoReplicaIdentityError
	if !errors.As(err, &nri) || !slices.Equal(nri.Tables, []string{"keyless"}) || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Fatalf("Setup = %v, want a NoReplicaIdentityError for keyless", err)
	}
	if hold != nil {
		t.Error("Setup failed but returned a Hold")
	}
	if st, err := src.SlotStatus(t.Context(), "ident"); err != nil || st.Exists {
		t.Errorf("failed Setup left a slot: %+v, %v", st, err)
	}
}

func TestReachFor(t *testing.T) {
	for _, tc := range []struct{ until, want pgoutput.LSN }{
		{0x1_0000_2000, 0x1_0000_2000},
		{0x1_0000_2018, 0x1_0000_2000}, // short page header
		{0x1_0000_0028, 0x1_0000_0000}, // long page header of a segment
		{0x1_0000_2030, 0x1_0000_2030},
	} {
		if got := reachFor(tc.until, 8192); got != tc.want {
			t.Errorf("reachFor(%s) = %s, want %s", tc.until, got, tc.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true}, // terminated by an administrator
		{&pgconn.PgError{Code: "57P03"}, true}, // starting up
		{&pgconn.PgError{Code: "55006"}, true}, // slot still active
		{&pgconn.PgError{Code: "42704"}, false},
		{&pgconn.PgError{Code: "28P01"}, false},
		{fmt.Errorf("receiving: %w", io.ErrUnexpectedEOF), true},
		{errStreamEnded, true},
		{&fnError{err: io.EOF}, false},
		{errors.New("decode"), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSetupPublicationUpdated(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "pub"
	exec(t, db, `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
		CREATE PUBLICATION migration_pub FOR TABLE a`)
	setup(t, src, task, "public.b")
	var tables []string
	rows, err := sqlConn(t, db).Query(t.Context(), `SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'migration_pub' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tables, []string{"b"}) {
		t.Errorf("publication tables = %v, want [b]", tables)
	}
	if _, _, err := src.Setup(t.Context(), "bad", []string{"x.y.z", ""}); err == nil {
		t.Error("Setup with an empty table name succeeded")
	}
}

// TestReadReconnects cuts the walsender mid-Read, as a source restart would:
// Read reconnects and delivers every transaction exactly once.
func TestReadReconnects(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "restart"
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, pad text)`)
	setup(t, src, task, "public.t")
	// Big rows, so the stream is still in flight when the walsender dies
	// rather than already sitting in the socket buffers.
	const n = 60
	for i := range n {
		exec(t, db, `INSERT INTO t VALUES ($1, repeat('x', 200000))`, i)
	}
	until := walEnd(t, db)

	var sessions atomic.Int32
	sessionStarted = func() { sessions.Add(1) }
	t.Cleanup(func() { sessionStarted = nil })
	killed := 0
	c := collector{onBatch: func(batch int) error {
		if batch == 5 || batch == 30 {
			killed++
			return pg.Exec(t.Context(), db, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, SlotName(task))
		}
		return nil
	}}
	// applied lags: the server restarts from before what fn already got.
	applied := func() pgoutput.LSN { return 0 }
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := src.Read(ctx, task, 0, until, 1, c.fn, applied); err != nil {
		t.Fatalf("Read: %v", err)
	}
	var ids []string
	for _, txn := range c.txns() {
		ids = append(ids, text(txn.Changes[0].New[0]))
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint(i))
	}
	if sessions.Load() < 2 {
		t.Errorf("%d replication sessions: the kills did not make Read reconnect", sessions.Load())
	}
	if killed != 2 || !slices.Equal(ids, want) {
		t.Errorf("after %d kills got ids %v, want 0..%d once each", killed, ids, n-1)
	}
}

// TestReadBatchBytes checks that batches hold whole transactions up to about
// maxBytes of values.
func TestReadBatchBytes(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "bytes"
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, pad text)`)
	setup(t, src, task, "public.t")
	const n = 20
	for i := range n {
		exec(t, db, `INSERT INTO t VALUES ($1, repeat('x', 1000))`, i)
	}
	var c collector
	// About 1100 bytes a transaction: three fit, a fourth does not.
	readAll(t, src, task, 0, walEnd(t, db), 3500, &c)
	if got := len(c.txns()); got != n {
		t.Fatalf("got %d transactions, want %d", got, n)
	}
	for i, b := range c.batches {
		if len(b) > 3 || len(b) < 2 && i != len(c.batches)-1 {
			t.Errorf("batch %d holds %d transactions, want 2 or 3", i, len(b))
		}
		for _, txn := range b {
			if len(txn.Changes) != 1 {
				t.Errorf("batch %d: transaction with %d changes", i, len(txn.Changes))
			}
		}
	}
}

// TestTeardownWaitsForReader drops a slot only once its reader has let go,
// and gives up after dropWaitTimeout.
func TestTeardownWaitsForReader(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "busy"
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`)
	cut, hold, err := src.Setup(t.Context(), task, []string{"public.t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Close(); err != nil {
		t.Fatal(err)
	}
	old := dropWaitTimeout
	dropWaitTimeout = time.Second
	t.Cleanup(func() { dropWaitTimeout = old })

	// A Read that never reaches its end keeps the slot active.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- src.Read(ctx, task, 0, cut.ConsistentPoint+1<<40, 1<<20,
			func([]Txn) error { return nil }, func() pgoutput.LSN { return 0 })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := src.SlotStatus(t.Context(), task)
		if err != nil {
			t.Fatal(err)
		}
		if st.Active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot never became active")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := src.Teardown(t.Context(), task); err == nil || !strings.Contains(err.Error(), "still in use") {
		t.Errorf("Teardown of an active slot = %v, want still in use", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Read = %v", err)
	}
	if err := src.Teardown(t.Context(), task); err != nil {
		t.Errorf("Teardown after the reader left = %v", err)
	}
	if st, err := src.SlotStatus(t.Context(), task); err != nil || st.Exists {
		t.Errorf("slot after Teardown: %+v, %v", st, err)
	}
}

// TestReadReportsWhileStreaming checks that a running Read keeps reporting
// applied() to the server, not only when it ends.
func TestReadReportsWhileStreaming(t *testing.T) {
	db := newDatabase(t)
	src := source(db)
	const task = "live"
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`)
	cut := setup(t, src, task, "public.t")

	var c collector
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- src.Read(ctx, task, 0, cut.ConsistentPoint+1<<40, 1, c.fn, c.applied)
	}()
	exec(t, db, `INSERT INTO t VALUES (1)`)
	exec(t, db, `INSERT INTO t VALUES (2)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		last := c.applied()
		if len(c.txns()) == 2 && confirmedFlush(t, db, task) == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn %s never reached the applied %s (%d transactions)", confirmedFlush(t, db, task), last, len(c.txns()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Read = %v", err)
	}
}
