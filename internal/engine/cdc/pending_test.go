package cdc

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestPending counts the changes waiting in a slot without consuming them:
// exactly below the limit, as a lower bound past it; a busy slot says so.
func TestPending(t *testing.T) {
	db := newDatabase(t)
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE other (id int PRIMARY KEY)`)
	src := source(db)
	setup(t, src, "pend", "public.t")

	p, err := src.Pending(t.Context(), "pend", 100)
	if err != nil || p.Changes != 0 || p.Transactions != 0 || p.More || !p.Oldest.IsZero() {
		t.Fatalf("empty slot: %+v, %v", p, err)
	}
	before := time.Now()
	for i := range 10 {
		// 3 changes per transaction on the published table, 1 on another.
		exec(t, db, fmt.Sprintf(`BEGIN; INSERT INTO t VALUES (%[1]d, 'a'); UPDATE t SET v = 'b' WHERE id = %[1]d;
			DELETE FROM t WHERE id = %[1]d; INSERT INTO other VALUES (%[1]d); COMMIT`, i))
	}
	exec(t, db, `INSERT INTO other VALUES (100)`) // a transaction of no published table
	p, err = src.Pending(t.Context(), "pend", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes != 30 || p.Transactions != 10 || p.More {
		t.Fatalf("pending = %+v, want 30 changes in 10 transactions, complete", p)
	}
	if p.Oldest.Before(before.Add(-time.Minute)) || p.Oldest.After(time.Now().Add(time.Minute)) || p.Lag(time.Now()) < 0 {
		t.Fatalf("oldest commit %v is not this test's", p.Oldest)
	}
	// Peeking consumed nothing.
	if again, err := src.Pending(t.Context(), "pend", 1000); err != nil || again.Changes != 30 {
		t.Fatalf("second count: %+v, %v", again, err)
	}
	// Past the limit the count is a lower bound that says so.
	p, err = src.Pending(t.Context(), "pend", 5)
	if err != nil || !p.More || p.Changes < 3 || p.Changes >= 30 || p.Through == 0 {
		t.Fatalf("limited count: %+v, %v", p, err)
	}

	// While a reader streams from the slot, counting is refused as busy.
	end := walEnd(t, db)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		c := &collector{onBatch: func(int) error { close(started); time.Sleep(2 * time.Second); return nil }}
		done <- src.Read(t.Context(), "pend", 0, end, 1<<20, c.fn, c.applied)
	}()
	<-started
	if _, err := src.Pending(t.Context(), "pend", 10); !errors.Is(err, ErrSlotBusy) {
		t.Errorf("count during a read: %v, want ErrSlotBusy", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := src.Teardown(t.Context(), "pend"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Pending(t.Context(), "pend", 10); !errors.Is(err, ErrSlotMissing) {
		t.Errorf("count without a slot: %v, want ErrSlotMissing", err)
	}
}
