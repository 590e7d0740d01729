package pgoutput

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// TestReplicationStreamingV2 streams transactions bigger than
// logical_decoding_work_mem with protocol version 2: a committed one and a
// rolled-back one arrive in StreamStart … StreamStop blocks whose messages
// carry the xid, and the Decoder follows the blocks.
func TestReplicationStreamingV2(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg := testenv.StartPostgresT(t, testenv.PostgresOptions{ExtraConf: []string{"logical_decoding_work_mem = 64kB"}})
	const db, slotName, rows = "postgres", "streaming", 2000

	if err := pg.Exec(ctx, db, `
		CREATE TABLE big (id int PRIMARY KEY, v text);
		CREATE PUBLICATION pub FOR TABLE big;
	`); err != nil {
		t.Fatal(err)
	}
	repl, err := pgconn.Connect(ctx, pg.SuperuserDSN(db)+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(context.WithoutCancel(ctx))
	slot, err := CreateSlot(ctx, repl, slotName, false)
	if err != nil {
		t.Fatal(err)
	}
	if slot.SnapshotName != "" {
		t.Errorf("NOEXPORT_SNAPSHOT slot exported %q", slot.SnapshotName)
	}
	const fill = `SELECT g, repeat('v', 100) FROM generate_series(1, 2000) g`
	if err := pg.Exec(ctx, db, `BEGIN; INSERT INTO big `+fill+`; ROLLBACK;
		BEGIN; INSERT INTO big `+fill+`; COMMIT;`); err != nil {
		t.Fatal(err)
	}
	if err := StartReplicationWithOptions(ctx, repl, slotName, slot.ConsistentPoint, ReplicationOptions{
		ProtoVersion: 2, Publications: []string{"pub"}, Streaming: true,
	}); err != nil {
		t.Fatal(err)
	}

	var (
		d                        Decoder
		starts, stops            int
		inserts                  = map[uint32]int{} // by xid
		aborted, committed       uint32
		inBlock, sawFirstSegment bool
	)
	for committed == 0 || aborted == 0 {
		msg, err := Receive(ctx, repl)
		if err != nil {
			t.Fatalf("receiving: %v (inserts so far %v)", err, inserts)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok {
			t.Fatalf("received %T", msg)
		}
		sm, err := ParseStreamMessage(cd.Data)
		if err != nil {
			t.Fatal(err)
		}
		x, ok := sm.(*XLogData)
		if !ok {
			continue
		}
		m, err := d.Decode(x.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *StreamStart:
			if inBlock {
				t.Fatal("nested StreamStart")
			}
			inBlock, starts = true, starts+1
			sawFirstSegment = sawFirstSegment || m.FirstSegment
		case *StreamStop:
			inBlock, stops = false, stops+1
		case *Insert:
			if !inBlock || m.Xid == 0 {
				t.Fatalf("insert outside a stream block or without xid: %+v", m)
			}
			inserts[m.Xid]++
		case *StreamCommit:
			committed = m.Xid
			if m.TransactionEndLSN <= m.CommitLSN || m.CommitLSN <= slot.ConsistentPoint {
				t.Errorf("stream commit LSNs %s, %s", m.CommitLSN, m.TransactionEndLSN)
			}
		case *StreamAbort:
			aborted = m.Xid
			if m.SubXid != m.Xid {
				t.Errorf("top-level abort with subxact xid %d", m.SubXid)
			}
		case *Begin, *Commit:
			t.Errorf("a transaction of %d rows was not streamed", rows)
		}
	}
	if starts < 2 || starts != stops || !sawFirstSegment {
		t.Errorf("%d StreamStart, %d StreamStop, first segment seen %t", starts, stops, sawFirstSegment)
	}
	// PostgreSQL 15 drops the changes of a transaction it already knows
	// aborted, so the rolled-back one may stream as an empty block.
	if committed == aborted || inserts[committed] != rows || inserts[aborted] > rows {
		t.Errorf("committed xid %d, aborted xid %d, inserts by xid %v", committed, aborted, inserts)
	}
}
