package pgoutput

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// updateTestdata rewrites testdata/ from the integration test's stream.
const updateTestdata = "PGOUTPUT_UPDATE_TESTDATA"

func TestReplicationStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg := testenv.StartPostgresT(t, testenv.PostgresOptions{})
	const db = "postgres"
	const slotName = "0cdc_slot" // a leading digit: the slot name must be quoted

	if err := pg.Exec(ctx, db, `
		CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TABLE public.items (id int PRIMARY KEY, name text, big text, m mood, amount numeric(10,2));
		ALTER TABLE public.items ALTER COLUMN big SET STORAGE EXTERNAL;
		ALTER TABLE public.items REPLICA IDENTITY FULL;
		CREATE TABLE public."Keyed" (id int PRIMARY KEY, v text);
		CREATE PUBLICATION pub_items FOR TABLE public.items;
		CREATE PUBLICATION "Pub ""Keyed""" FOR TABLE public."Keyed";
		INSERT INTO public.items VALUES (0, 'before the slot', 'x', 'ok', 0);
		SELECT pg_replication_origin_create('upstream');
	`); err != nil {
		t.Fatal(err)
	}

	repl, err := pgconn.Connect(ctx, pg.SuperuserDSN(db)+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(context.WithoutCancel(ctx))

	sys, err := IdentifySystem(ctx, repl)
	if err != nil {
		t.Fatal(err)
	}
	if sys.DBName != db || sys.Timeline != 1 || sys.XLogPos == 0 || sys.SystemID == "" {
		t.Errorf("IdentifySystem = %+v", sys)
	}

	slot, err := CreateSlot(ctx, repl, slotName, true)
	if err != nil {
		t.Fatal(err)
	}
	if slot.Name != slotName || slot.Plugin != "pgoutput" || slot.SnapshotName == "" || slot.ConsistentPoint < sys.XLogPos {
		t.Errorf("CreateSlot = %+v (system at %s)", slot, sys.XLogPos)
	}

	sqlConn, err := pgx.Connect(ctx, pg.SuperuserDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer sqlConn.Close(context.WithoutCancel(ctx))

	// The exported snapshot is valid until the next command on repl: read
	// through it first, while the workload has not run yet.
	checkSnapshot(ctx, t, pg, slot.SnapshotName)

	workload := [][]string{
		{`INSERT INTO items VALUES (1, 'one', repeat('abcdefghij', 1000), 'happy', 1.50)`},
		{`INSERT INTO items VALUES (2, 'two', 'small', NULL, NULL)`},
		{`UPDATE items SET name = 'uno' WHERE id = 1`},
		{`UPDATE items SET big = NULL WHERE id = 2`},
		{`DELETE FROM items WHERE id = 2`},
		{`BEGIN`, `INSERT INTO "Keyed" VALUES (10, 'ten')`, `UPDATE "Keyed" SET id = 11 WHERE id = 10`,
			`UPDATE "Keyed" SET v = 'eleven'`, `DELETE FROM "Keyed"`, `COMMIT`},
		{`SELECT pg_logical_emit_message(true, 'migration', 'hello')`},
		{`SELECT pg_logical_emit_message(false, 'migration', 'outside')`},
		{`SELECT pg_replication_origin_session_setup('upstream')`, `BEGIN`,
			`SELECT pg_replication_origin_xact_setup('0/AB', now())`,
			`INSERT INTO items VALUES (3, 'three', 'x', 'sad', 3)`, `COMMIT`,
			`SELECT pg_replication_origin_session_reset()`},
		{`TRUNCATE items, "Keyed" RESTART IDENTITY CASCADE`},
	}
	for _, stmts := range workload {
		for _, s := range stmts {
			if _, err := sqlConn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}

	if err := StartReplication(ctx, repl, slotName, slot.ConsistentPoint, []string{"pub_items", `Pub "Keyed"`}); err != nil {
		t.Fatal(err)
	}

	// Stream until the truncate's commit; keepalives are answered with the
	// slot's start, since nothing is applied yet.
	const wantCommits = 9
	var frames [][]byte
	for commits := 0; commits < wantCommits; {
		msg, err := Receive(ctx, repl)
		if err != nil {
			t.Fatalf("receiving after %d commits: %v", commits, err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok {
			t.Fatalf("received %T, want CopyData", msg)
		}
		sm, err := ParseStreamMessage(cd.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch sm := sm.(type) {
		case *PrimaryKeepalive:
			if sm.ServerWALEnd < slot.ConsistentPoint {
				t.Errorf("keepalive WAL end %s before the slot's start %s", sm.ServerWALEnd, slot.ConsistentPoint)
			}
			if sm.ReplyRequested {
				if err := SendStandbyStatus(ctx, repl, Applied(slot.ConsistentPoint)); err != nil {
					t.Fatal(err)
				}
			}
		case *XLogData:
			// CopyData is reused by the next Receive.
			frames = append(frames, bytes.Clone(cd.Data))
			if len(sm.Data) > 0 && sm.Data[0] == byte(MessageCommit) {
				commits++
			}
		}
	}

	last := checkStream(t, frames)
	if os.Getenv(updateTestdata) != "" {
		writeTestdata(t, frames)
	}

	// Report the last transaction as durably applied; the slot must confirm
	// exactly that.
	if err := SendStandbyStatus(ctx, repl, Applied(last.TransactionEndLSN)); err != nil {
		t.Fatal(err)
	}
	var confirmed LSN
	for deadline := time.Now().Add(20 * time.Second); ; {
		var s string
		if err := sqlConn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slotName).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if confirmed, err = ParseLSN(s); err != nil {
			t.Fatal(err)
		}
		if confirmed == last.TransactionEndLSN || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if confirmed != last.TransactionEndLSN {
		t.Errorf("confirmed_flush_lsn = %s, reported %s", confirmed, last.TransactionEndLSN)
	}

	// Ending the stream frees the slot; DROP … WAIT rides out the walsender's
	// exit on a fresh connection.
	if err := repl.Close(ctx); err != nil {
		t.Fatal(err)
	}
	repl2, err := pgconn.Connect(ctx, pg.SuperuserDSN(db)+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	defer repl2.Close(context.WithoutCancel(ctx))
	if err := DropSlot(ctx, repl2, slotName, true); err != nil {
		t.Fatal(err)
	}
	var slots int
	if err := sqlConn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 0 {
		t.Errorf("%d replication slots left after DropSlot", slots)
	}
	// The connection stays usable after a failed START_REPLICATION.
	err = StartReplication(ctx, repl2, slotName, 0, []string{"pub_items"})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42704" {
		t.Errorf("StartReplication on a dropped slot: %v, want SQLSTATE 42704", err)
	}
	if _, err := IdentifySystem(ctx, repl2); err != nil {
		t.Errorf("IdentifySystem after a failed START_REPLICATION: %v", err)
	}
}

// checkSnapshot reads the table through the slot's exported snapshot: it
// holds the row inserted before the slot and nothing else.
func checkSnapshot(ctx context.Context, t *testing.T, pg *testenv.Postgres, snapshot string) {
	t.Helper()
	c, err := pgx.Connect(ctx, pg.SuperuserDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only; the test has asserted what matters
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
		t.Fatal(err)
	}
	var ids string
	if err := tx.QueryRow(ctx, `SELECT string_agg(id::text, ',' ORDER BY id) FROM items`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if ids != "0" {
		t.Errorf("snapshot sees ids %q, want \"0\"", ids)
	}
}

// writeTestdata saves the frames as testdata/NNN-<type>.bin and their order in
// testdata/index.txt.
func writeTestdata(t *testing.T, frames [][]byte) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	var index strings.Builder
	index.WriteString("# XLogData CopyData payloads of TestReplicationStream, in stream order.\n")
	index.WriteString("# Regenerate: " + updateTestdata + "=1 go test -run TestReplicationStream .\n")
	for i, f := range frames {
		x, err := ParseXLogData(f)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%03d-%s.bin", i, MessageType(x.Data[0]))
		if err := os.WriteFile(filepath.Join("testdata", name), f, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&index, "%s\n", name)
	}
	if err := os.WriteFile(filepath.Join("testdata", "index.txt"), []byte(index.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
