package task

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// lookTask makes a full_load_and_cdc task, not run yet, from database
// prefix_src (holding app.items) to prefix_tgt, and a pool of its source.
// Its slot and publication are dropped when the test ends.
func lookTask(t *testing.T, prefix string) (Spec, *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	srcDB, tgtDB := prefix+"_src", prefix+"_tgt"
	for _, db := range []string{srcDB, tgtDB} {
		if err := pg.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.Exec(ctx, "postgres", `ALTER DATABASE `+srcDB+` SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, srcDB, `
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, v text);
INSERT INTO app.items SELECT g, 'v' FROM generate_series(1, 1000) g;
ANALYZE;`); err != nil {
		t.Fatal(err)
	}
	s := spec(srcDB, tgtDB, ModeFullLoadAndCDC)
	s.Name = prefix
	// t.Context() is done by the time cleanups run.
	t.Cleanup(func() { _ = s.Teardown(context.Background()) })
	src, err := postgres.Connect(ctx, *s.Source.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return s, src
}

// updateItems changes n rows of app.items, one transaction each.
func updateItems(t *testing.T, s Spec, n int) {
	t.Helper()
	for i := range n {
		if err := pg.Exec(t.Context(), s.Source.Postgres.Database, `UPDATE app.items SET v = v || 'x' WHERE id = $1`, i+1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSlotStatus: the one-query look at a slot reads what cdc.Source's does.
func TestSlotStatus(t *testing.T) {
	ctx := t.Context()
	s, src := lookTask(t, "slot_look")
	source := cdc.Source{Config: *s.Source.Postgres}

	// No slot yet.
	got, _, err := slotStatus(ctx, src, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	want, err := source.SlotStatus(ctx, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Exists || want.Exists || got.CurrentLSN == 0 || got.CurrentLSN > want.CurrentLSN {
		t.Fatalf("no slot: got %+v, cdc reads %+v", got, want)
	}

	if _, _, _, err := s.RunCDC(ctx, RunOptions{CDC: CDCOptions{CatchUpAfterLoad: true}}); err != nil {
		t.Fatal(err)
	}
	updateItems(t, s, 5)
	got, mark, err := slotStatus(ctx, src, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = source.SlotStatus(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	if !got.Exists || got.ConfirmedFlush != want.ConfirmedFlush || got.RestartLSN != want.RestartLSN ||
		got.WALStatus != want.WALStatus || got.WALStatus == "" || got.Active != want.Active || got.LagBytes <= 0 ||
		int64(got.CurrentLSN-got.ConfirmedFlush) != got.LagBytes || int64(got.CurrentLSN-got.RestartLSN) != got.RetainedBytes {
		t.Fatalf("slot: got %+v, cdc reads %+v", got, want)
	}
	if mark.confirmed != got.ConfirmedFlush || mark.restart != got.RestartLSN || mark.flushed == 0 {
		t.Fatalf("mark %+v of slot %+v", mark, got)
	}
}

// TestBacklogCount: a count of a slot's backlog is taken again only when
// the slot or the WAL moved, and the plan's count, made while it reads the
// catalogs, equals one made alone.
func TestBacklogCount(t *testing.T) {
	ctx := t.Context()
	s, _ := lookTask(t, "backlog")
	source := cdc.Source{Config: *s.Source.Postgres}
	if _, _, _, err := s.RunCDC(ctx, RunOptions{CDC: CDCOptions{CatchUpAfterLoad: true}}); err != nil {
		t.Fatal(err)
	}
	updateItems(t, s, 5)
	latest := func() *backlogCount {
		backlogs.mu.Lock()
		defer backlogs.mu.Unlock()
		return backlogs.counts[s.backlogKey()]
	}
	look := func() CDCState {
		t.Helper()
		st, err := s.CDC(ctx, true)
		if err != nil || !st.PendingKnown {
			t.Fatalf("look: %+v, %v", st, err)
		}
		return st
	}
	first := look()
	if first.Pending.Changes != 5 || first.Pending.More {
		t.Fatalf("counted %+v, want 5 changes", first.Pending)
	}
	counted := latest()
	if again := look(); latest() != counted || again.Pending != first.Pending {
		t.Fatalf("a look at the same slot counted again: %+v, then %+v", first.Pending, again.Pending)
	}
	updateItems(t, s, 2)
	if st := look(); latest() == counted || st.Pending.Changes != 7 {
		t.Fatalf("after 2 more changes: %+v (counted again: %v), want 7 changes", st.Pending, latest() != counted)
	}

	// A count cut at the limit holds whatever is written after it.
	defer func(n int) { pendingLimit = n }(pendingLimit)
	pendingLimit = 3
	limited := look()
	if !limited.Pending.More || limited.Pending.Changes < 1 {
		t.Fatalf("limited count %+v", limited.Pending)
	}
	counted = latest()
	updateItems(t, s, 2)
	if st := look(); latest() != counted || st.Pending != limited.Pending {
		t.Fatalf("a count cut at the limit was taken again: %+v, then %+v", limited.Pending, st.Pending)
	}

	// The plan counts while it reads the catalogs: the same count as alone.
	pendingLimit = 2000
	pv, err := s.Preview(ctx)
	if err != nil || len(pv.Problems) > 0 {
		t.Fatalf("preview: %v %v", pv.Problems, err)
	}
	alone, err := source.Pending(ctx, s.Name, pendingLimit)
	if err != nil {
		t.Fatal(err)
	}
	if !pv.CDC.PendingKnown || pv.CDC.Pending != alone || alone.Changes != 9 || pv.CDC.Slot.Active {
		t.Fatalf("plan counted %+v (known %v, slot %+v), alone %+v; want 9 changes", pv.CDC.Pending, pv.CDC.PendingKnown, pv.CDC.Slot, alone)
	}
}

// TestBacklogCountAsyncCommit: a transaction committed asynchronously just
// before a look is counted, though the WAL writer has not flushed its
// commit record yet: the catch-up would apply it.
func TestBacklogCountAsyncCommit(t *testing.T) {
	ctx := t.Context()
	s, _ := lookTask(t, "backlog_async")
	if _, _, _, err := s.RunCDC(ctx, RunOptions{CDC: CDCOptions{CatchUpAfterLoad: true}}); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if err := pg.Exec(ctx, s.Source.Postgres.Database, `BEGIN; SET LOCAL synchronous_commit = off; UPDATE app.items SET v = v || 'a' WHERE id <= 3; COMMIT`); err != nil {
			t.Fatal(err)
		}
		st, err := s.CDC(ctx, true)
		if err != nil || !st.PendingKnown {
			t.Fatalf("round %d: look: %+v, %v", round, st, err)
		}
		if st.Pending.Changes != 3 || st.Pending.Transactions != 1 {
			t.Fatalf("round %d: counted %+v right after an asynchronous commit, want 3 changes in 1 transaction", round, st.Pending)
		}
		if _, _, _, err := s.RunCDC(ctx, RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
