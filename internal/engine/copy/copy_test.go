package copy //nolint:predeclared // see doc.go

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

func TestRunCopiesEveryTable(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(8000))
	p := shopPlan()

	st, err := ReadStatus(t.Context(), e.tgt, "shop")
	if err != nil || st.Exists {
		t.Fatalf("ReadStatus before any run = %+v, %v; want Exists=false, no error", st, err)
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM pg_namespace WHERE nspname = '_migration'`); n != 0 {
		t.Fatalf("ReadStatus created the control schema")
	}

	ev := newEvents()
	start := time.Now()
	st = mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp1",
		Options{Task: "shop", Parallelism: 3, ChunkBytes: 32 << 10, Progress: ev.record}))
	e.sameData(shopTables...)

	if !st.Exists || st.Phase != PhaseDone || st.Fingerprint != "fp1" || st.LastError != "" {
		t.Errorf("status = %+v; want done with fingerprint fp1", st)
	}
	if st.StartedAt.Before(start.Add(-time.Minute)) || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("started %v, finished %v", st.StartedAt, st.FinishedAt)
	}
	if len(st.Tables) != len(shopTables) {
		t.Fatalf("status has %d tables, want %d", len(st.Tables), len(shopTables))
	}
	evs := ev.drain()
	perTable := chunkEvents(evs)
	// The enum array's binary form names the source's type OIDs: that
	// table goes as text COPY, the others as binary.
	var text []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Message, "text COPY") {
			text = append(text, ev.Table)
		}
	}
	if !slices.Equal(text, []string{"shop.customers"}) {
		t.Errorf("text COPY for %v, want only shop.customers", text)
	}
	for i, ts := range st.Tables {
		if ts.Target != shopTables[i] || ts.Source != shopTables[i] {
			t.Errorf("table %d: %s <- %s, want %s", i, ts.Target, ts.Source, shopTables[i])
		}
		want := count(t, e.src, `SELECT count(*) FROM `+shopTables[i])
		if ts.Phase != PhaseIndexed || ts.Rows != want || ts.ChunksDone != ts.Chunks || ts.FinishedAt.IsZero() {
			t.Errorf("%s: %+v; want indexed, %d rows, all chunks done", ts.Target, ts, want)
		}
		if perTable[ts.Target] != ts.Chunks {
			t.Errorf("%s: %d chunk events for %d chunks", ts.Target, perTable[ts.Target], ts.Chunks)
		}
	}
	// Big tables were split, by each method.
	methods := map[string]int64{}
	for _, m := range []string{methodRange, methodCtid, methodAll} {
		methods[m] = count(t, e.tgt, `SELECT count(*) FROM _migration.chunks WHERE method = $1`, m)
	}
	if methods[methodRange] < 10 || methods[methodCtid] < 2 {
		t.Errorf("chunks by method: %v; want range and ctid chunks", methods)
	}
	// The partitioned table was read leaf by leaf, the sub-partitioned one included.
	if n := count(t, e.tgt, `SELECT count(DISTINCT source_name) FROM _migration.chunks WHERE target_name = 'measures'`); n != 4 {
		t.Errorf("measures read from %d leaves, want 4", n)
	}
	// Keys, indexes and the foreign key were built after the load.
	if n := count(t, e.tgt, `SELECT count(*) FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype IN ('p', 'f') AND conparentid = 0`); n != 6 {
		t.Errorf("target has %d primary and foreign keys, want 6", n)
	}

	// A finished task's next run does nothing.
	ev2 := newEvents()
	st2 := mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp1", Options{Task: "shop", Progress: ev2.record}))
	if evs := ev2.drain(); len(evs) != 0 {
		t.Errorf("second run sent events %v", evs)
	}
	if st2.Phase != PhaseDone || !st2.FinishedAt.Equal(st.FinishedAt) {
		t.Errorf("second run status %+v", st2)
	}
	e.sameData(shopTables...)

	// Another plan for the same task is refused, and nothing is written.
	if _, err := Run(t.Context(), e.src, e.tgt, p, "fp2", Options{Task: "shop"}); !errors.Is(err, ErrFingerprintMismatch) {
		t.Errorf("Run with another fingerprint: %v, want ErrFingerprintMismatch", err)
	}

	// Forget removes the records, never the data.
	if err := Forget(t.Context(), e.tgt, "shop"); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadStatus(t.Context(), e.tgt, "shop"); err != nil || st.Exists {
		t.Errorf("ReadStatus after Forget = %+v, %v", st, err)
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM _migration.chunks`); n != 0 {
		t.Errorf("%d chunk records left after Forget", n)
	}
	e.sameData(shopTables...)
	if err := Forget(t.Context(), e.tgt, "shop"); err != nil {
		t.Errorf("forgetting a forgotten task: %v", err)
	}

	// DropTargets drops the plan's tables and nothing else.
	if err := DropTargets(t.Context(), e.tgt, p); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM pg_class WHERE relnamespace = 'shop'::regnamespace AND relkind IN ('r', 'p')`); n != 0 {
		t.Errorf("%d tables left after DropTargets", n)
	}
	if err := DropTargets(t.Context(), e.tgt, p); err != nil {
		t.Errorf("dropping dropped targets: %v", err)
	}
}

func TestRunWhereAndTransform(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(4000))
	email := `encode(sha256(convert_to("email"::text, 'UTF8')), 'hex')`
	p := &plan.Plan{Tables: []plan.Table{{
		Source: srcTable("customers", "table", "id"), Target: plan.Name{Schema: "masked", Name: "people"},
		Where: "id % 3 = 0 AND name IS NOT NULL -- a comment ends the condition",
		Columns: []plan.Column{col("id"), {Source: "email", Target: "email_hash", Transform: plan.TransformSHA256, Expr: email},
			{Source: "score", Target: "points", Expr: `"score"`}},
		Key: []string{"id"},
		CreateDDL: []string{`CREATE SCHEMA masked`,
			`CREATE TABLE masked.people (id bigint NOT NULL, email_hash text, points float8)`},
		IndexDDL: []string{`ALTER TABLE masked.people ADD PRIMARY KEY (id)`},
	}}}
	st := mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp", Options{Task: "masked", ChunkBytes: 16 << 10}))
	want := digest(t, e.src, `(SELECT id, `+email+` AS email_hash, score AS points FROM shop.customers
		WHERE id % 3 = 0 AND name IS NOT NULL)`)
	if got := digest(t, e.tgt, "masked.people"); got != want {
		t.Errorf("target %s, want %s", got, want)
	}
	if st.Tables[0].Chunks < 2 || st.Tables[0].Rows != count(t, e.tgt, `SELECT count(*) FROM masked.people`) {
		t.Errorf("status %+v", st.Tables[0])
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM masked.people WHERE email_hash LIKE '%@%'`); n != 0 {
		t.Errorf("%d clear e-mail addresses in the target", n)
	}
}

func TestRunResumesAfterCancel(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(12000))
	p := shopPlan()
	opt := Options{Task: "shop", Parallelism: 2, ChunkBytes: 16 << 10}

	// First run: cancelled once a few chunks are in.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ev1 := newEvents()
	var chunks atomic.Int64
	opt.Progress = func(ev Event) {
		ev1.record(ev)
		if ev.Chunk > 0 && chunks.Add(1) >= 5 {
			cancel()
		}
	}
	st, err := Run(ctx, e.src, e.tgt, p, "fp", opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run: %v, want an error wrapping context.Canceled", err)
	}
	if !st.Exists || st.Phase != PhaseLoading || st.LastError == "" {
		t.Errorf("status after cancel %+v; want loading with the error", st)
	}
	done1 := count(t, e.tgt, `SELECT count(*) FROM _migration.chunks WHERE done_at IS NOT NULL`)
	total := count(t, e.tgt, `SELECT count(*) FROM _migration.chunks`)
	first := chunkEvents(ev1.drain())
	var sent1 int64
	for _, n := range first {
		sent1 += int64(n)
	}
	// A chunk whose COMMIT went through as ctx ended is done without an event.
	if sent1 > done1 || done1 < 5 || done1 >= total {
		t.Fatalf("after cancel: %d chunks recorded done, %d events, %d chunks in all", done1, sent1, total)
	}
	// What is recorded is exactly what is in the target: no half chunk.
	var recorded, rows int64
	for _, tbl := range st.Tables {
		recorded += tbl.Rows
	}
	for _, tbl := range shopTables {
		rows += count(t, e.tgt, `SELECT count(*) FROM `+tbl)
	}
	if recorded != rows {
		t.Errorf("%d rows recorded, %d rows in the target", recorded, rows)
	}

	// Second run: copies only what is missing.
	ev2 := newEvents()
	opt.Progress = ev2.record
	st = mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp", opt))
	second := chunkEvents(ev2.drain())
	var sent2 int64
	for _, n := range second {
		sent2 += int64(n)
	}
	if done1+sent2 != total {
		t.Errorf("chunks copied: %d then %d, want %d in all", done1, sent2, total)
	}
	if st.Phase != PhaseDone || st.LastError != "" {
		t.Errorf("status after resume %+v", st)
	}
	e.sameData(shopTables...)
}

func TestRunTimeoutThenResume(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(12000))
	p := shopPlan()
	opt := Options{Task: "shop", Parallelism: 4, ChunkBytes: 8 << 10}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, e.src, e.tgt, p, "fp", opt)
	if err == nil {
		t.Skip("the load finished within the deadline; nothing to resume")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run past its deadline: %v, want an error wrapping DeadlineExceeded", err)
	}
	mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp", opt))
	e.sameData(shopTables...)
}

func TestRunReadsGivenSnapshot(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(2000))
	before := map[string]string{}
	for _, tbl := range shopTables {
		before[tbl] = digest(t, e.src, tbl)
	}
	// A snapshot exported before the source changes, as CDC's slot would.
	conn, err := e.src.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var snapshot string
	if _, err := conn.Exec(t.Context(), "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		t.Fatal(err)
	}
	e.execSrc(`DELETE FROM shop.events WHERE kind = 'view'; UPDATE shop.lines SET qty = qty + 1;
		INSERT INTO shop.skus VALUES ('new', 'row')`)

	mustRun(t)(Run(t.Context(), e.src, e.tgt, shopPlan(), "fp",
		Options{Task: "shop", ChunkBytes: 16 << 10, Snapshot: snapshot}))
	for _, tbl := range shopTables {
		if got := digest(t, e.tgt, tbl); got != before[tbl] {
			t.Errorf("%s: target %s, want the snapshot's %s", tbl, got, before[tbl])
		}
	}
	if _, err := conn.Exec(t.Context(), "COMMIT"); err != nil {
		t.Fatal(err)
	}

	if _, err := Run(t.Context(), e.src, e.tgt, shopPlan(), "fp", Options{Task: "bad", Snapshot: "x'; DROP"}); err == nil {
		t.Error("Run accepted a malformed snapshot id")
	}
}

func TestRunIntoExistingTable(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(2000))
	e.execTgt(`CREATE SCHEMA shop; CREATE TABLE shop.events (kind text, payload text, extra int DEFAULT 7)`)
	tbl := shopPlan().Tables[4]
	tbl.Exists, tbl.CreateDDL = true, nil
	mustRun(t)(Run(t.Context(), e.src, e.tgt, &plan.Plan{Tables: []plan.Table{tbl}}, "fp",
		Options{Task: "events", ChunkBytes: 8 << 10}))
	if got, want := digest(t, e.tgt, "(SELECT kind, payload FROM shop.events)"), digest(t, e.src, "shop.events"); got != want {
		t.Errorf("target %s, want %s", got, want)
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM shop.events WHERE extra <> 7`); n != 0 {
		t.Errorf("%d rows without the target's default", n)
	}
}

func TestRunRefusesConcurrentRun(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(4000))
	p := shopPlan()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		// The first run stalls in its first progress event, holding the task.
		_, err := Run(t.Context(), e.src, e.tgt, p, "fp", Options{Task: "shop", ChunkBytes: 16 << 10,
			Progress: func(Event) {
				select {
				case started <- struct{}{}:
					<-release
				default:
				}
			}})
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("first Run ended before its first progress event: %v", err)
	}
	if _, err := Run(t.Context(), e.src, e.tgt, p, "fp", Options{Task: "shop"}); !errors.Is(err, ErrTaskRunning) {
		t.Errorf("second concurrent Run: %v, want ErrTaskRunning", err)
	}
	if err := Forget(t.Context(), e.tgt, "shop"); !errors.Is(err, ErrTaskRunning) {
		t.Errorf("Forget of a running task: %v, want ErrTaskRunning", err)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	e.sameData(shopTables...)
}

func TestRunReportsTargetErrors(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(2000))
	tbl := shopPlan().Tables[1]
	// A target that rejects some rows: the chunk fails, nothing is half-written.
	tbl.CreateDDL = append(tbl.CreateDDL, `ALTER TABLE shop.orders ADD CHECK (id < 1500)`)
	st, err := Run(t.Context(), e.src, e.tgt, &plan.Plan{Tables: []plan.Table{tbl}}, "fp",
		Options{Task: "orders", ChunkBytes: 8 << 10, Parallelism: 2})
	if err == nil || isCtxErr(err) {
		t.Fatalf("Run into a failing target: %v, want the check violation", err)
	}
	if st.LastError == "" || st.Phase == PhaseDone {
		t.Errorf("status %+v; want the error recorded", st)
	}
	var rows int64
	for _, ts := range st.Tables {
		rows += ts.Rows
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM shop.orders`); n != rows {
		t.Errorf("%d rows in the target, %d recorded", n, rows)
	}
}

func TestRunPrepareOnly(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(1000))
	p := shopPlan()
	st := mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp", Options{Task: "shop", PrepareOnly: true}))
	if !st.Exists || st.Phase != PhasePending || len(st.Tables) != len(shopTables) {
		t.Fatalf("status after PrepareOnly %+v", st)
	}
	for i, ts := range st.Tables {
		if ts.Phase != PhaseCreated || ts.Rows != 0 {
			t.Errorf("%s: %+v; want created, empty", ts.Target, ts)
		}
		if n := count(t, e.tgt, `SELECT count(*) FROM `+shopTables[i]); n != 0 {
			t.Errorf("%s has %d rows after PrepareOnly", shopTables[i], n)
		}
	}
	mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp", Options{Task: "shop"}))
	e.sameData(shopTables...)
}

// TestRunResumesAtEachStep fails the index build, then the foreign key,
// and checks that each next run does only what is left.
func TestRunResumesAtEachStep(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(2000))
	p := shopPlan()
	good := p.Tables[1]
	p.Tables[1].IndexDDL = append(slices.Clone(good.IndexDDL), `CREATE INDEX ON shop.orders (no_such_column)`)
	p.Tables[1].ForeignKeyDDL = []string{`ALTER TABLE shop.orders ADD FOREIGN KEY (id) REFERENCES shop.customers`}
	opt := Options{Task: "shop", ChunkBytes: 16 << 10}

	st, err := Run(t.Context(), e.src, e.tgt, p, "fp", opt)
	if err == nil || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("Run with a bad index: %v", err)
	}
	if !strings.Contains(st.LastError, "no_such_column") || st.Phase == PhaseDone {
		t.Errorf("status %+v; want the index error recorded", st)
	}
	// The failure stops every worker; orders itself is fully loaded.
	var orders TableStatus
	for _, ts := range st.Tables {
		if ts.Target == "shop.orders" {
			orders = ts
		}
	}
	if orders.Phase != PhaseLoaded || orders.ChunksDone != orders.Chunks || orders.Chunks < 2 {
		t.Errorf("orders: %+v; want loaded with every chunk done", orders)
	}
	done := count(t, e.tgt, `SELECT count(*) FROM _migration.chunks WHERE done_at IS NOT NULL`)
	total := count(t, e.tgt, `SELECT count(*) FROM _migration.chunks`)

	// Indexes fixed (same fingerprint): no chunk is copied again, the
	// foreign key now fails (orders 2001.. reference no customer).
	p.Tables[1].IndexDDL = good.IndexDDL
	ev := newEvents()
	opt.Progress = ev.record
	_, err = Run(t.Context(), e.src, e.tgt, p, "fp", opt)
	if err == nil || !strings.Contains(err.Error(), "foreign key") {
		t.Fatalf("Run with a bad foreign key: %v", err)
	}
	evs := ev.drain()
	perTable := chunkEvents(evs)
	var copied int64
	for _, n := range perTable {
		copied += int64(n)
	}
	if perTable["shop.orders"] != 0 || done+copied != total {
		t.Errorf("second run copied %v; want %d chunks, none of orders", perTable, total-done)
	}
	if !slices.ContainsFunc(evs, func(e Event) bool { return e.Table == "shop.orders" && e.Message == "indexed" }) {
		t.Errorf("orders not indexed on the second run: %v", evs)
	}

	p.Tables[1].ForeignKeyDDL = good.ForeignKeyDDL
	st = mustRun(t)(Run(t.Context(), e.src, e.tgt, p, "fp", opt))
	evs = ev.drain()
	if len(evs) != 1 || evs[0].Message != "foreign keys added" {
		t.Errorf("third run's events %v; want only the foreign keys", evs)
	}
	if st.Phase != PhaseDone || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	e.sameData(shopTables...)
}
