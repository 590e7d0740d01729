package cdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
)

// Pending is what a task's slot holds that the target has not applied yet,
// counted without consuming it.
type Pending struct {
	// Changes is the number of inserts, updates, deletes and truncates of
	// the task's tables waiting in the slot.
	Changes int
	// Transactions is the number of transactions holding them.
	Transactions int
	// More is true when counting stopped at the limit: Changes is a lower bound.
	More bool
	// Through is the WAL position of the last change counted.
	Through pgoutput.LSN
	// Oldest is the commit time of the first waiting transaction; zero when
	// nothing waits. The target is behind the source by now - Oldest.
	Oldest time.Time
}

// Lag is how far behind the source the target is at now: 0 when nothing waits.
func (p Pending) Lag(now time.Time) time.Duration {
	if p.Oldest.IsZero() || now.Before(p.Oldest) {
		return 0
	}
	return now.Sub(p.Oldest)
}

// ErrSlotBusy is returned by Pending while a reader streams from the slot.
var ErrSlotBusy = errors.New("replication slot is in use by another session")

// Pending counts the changes of the task's tables that wait in its slot
// after the slot's confirmed position, up to limit changes, by decoding the
// slot with pg_logical_slot_peek_binary_changes: nothing is consumed or
// written. The slot must exist and be idle (ErrSlotBusy otherwise). Decoding
// reads WAL from the slot's restart point, so ctx should bound it.
func (s Source) Pending(ctx context.Context, task string, limit int) (Pending, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return Pending{}, err
	}
	defer closeQuietly(conn)
	// upto_nchanges is checked after each decoded transaction: the count
	// can pass limit by one transaction's rows.
	var p Pending
	var rows int
	var first []byte
	var through *string
	err = conn.QueryRow(ctx, `
		SELECT count(*)::int, max(lsn)::text,
		       count(*) FILTER (WHERE get_byte(data, 0) IN (73, 85, 68, 84))::int, -- I, U, D, T
		       count(*) FILTER (WHERE get_byte(data, 0) = 66)::int,                -- B
		       (array_agg(data ORDER BY lsn) FILTER (WHERE get_byte(data, 0) = 66))[1]
		FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, 'proto_version', '1', 'publication_names', $3)`,
		SlotName(task), limit, pgx.Identifier{PublicationName(task)}.Sanitize()).Scan(&rows, &through, &p.Changes, &p.Transactions, &first)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use
			return Pending{}, fmt.Errorf("counting pending changes of task %s: %w", task, ErrSlotBusy)
		}
		if errors.As(err, &pgErr) && pgErr.Code == "42704" { // undefined_object
			return Pending{}, fmt.Errorf("counting pending changes of task %s: %w", task, ErrSlotMissing)
		}
		return Pending{}, fmt.Errorf("counting pending changes of task %s: %w", task, err)
	}
	p.More = rows >= limit
	if through != nil {
		if p.Through, err = pgoutput.ParseLSN(*through); err != nil {
			return Pending{}, err
		}
	}
	if first != nil {
		m, err := pgoutput.Parse(first)
		if err != nil {
			return Pending{}, fmt.Errorf("counting pending changes of task %s: %w", task, err)
		}
		if b, ok := m.(*pgoutput.Begin); ok {
			p.Oldest = b.CommitTime
		}
	}
	return p, nil
}
