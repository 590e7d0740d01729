package pgoutput

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The helpers below take a *pgconn.PgConn opened with
// replication=database in its RuntimeParams (a walsender connection). They
// must not be called concurrently on one connection.

// slotNameRE is what PostgreSQL itself allows for slot names
// (ReplicationSlotValidateName).
var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// ValidateSlotName reports whether name is a valid replication slot name.
func ValidateSlotName(name string) error {
	if !slotNameRE.MatchString(name) {
		return fmt.Errorf("invalid replication slot name %q: want 1 to 63 of a-z, 0-9 and _", name)
	}
	return nil
}

// quoteIdent double-quotes a validated slot name: the replication grammar
// would lex an unquoted name starting with a digit as a number.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLiteral quotes a replication command string literal, which knows
// only ” as an escape (no backslash escapes).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// publicationNames renders the publication_names option value: a
// comma-separated list of double-quoted identifiers that pgoutput splits
// with SplitIdentifierString, so case and punctuation survive.
func publicationNames(pubs []string) (string, error) {
	if len(pubs) == 0 {
		return "", errors.New("no publication names")
	}
	q := make([]string, len(pubs))
	for i, p := range pubs {
		if p == "" || len(p) > 63 || strings.IndexByte(p, 0) >= 0 {
			return "", fmt.Errorf("invalid publication name %q: want 1 to 63 bytes without NUL", p)
		}
		q[i] = quoteIdent(p)
	}
	return strings.Join(q, ","), nil
}

// SystemInfo is the answer to IDENTIFY_SYSTEM.
type SystemInfo struct {
	SystemID string // the cluster's unique identifier, as decimal text
	Timeline int32
	XLogPos  LSN    // current WAL flush position
	DBName   string // empty on a physical replication connection
}

// IdentifySystem runs IDENTIFY_SYSTEM.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (SystemInfo, error) {
	row, err := execOneRow(ctx, conn, "IDENTIFY_SYSTEM", 4)
	if err != nil {
		return SystemInfo{}, fmt.Errorf("identifying system: %w", err)
	}
	tl, err := strconv.ParseInt(string(row[1]), 10, 32)
	if err != nil {
		return SystemInfo{}, fmt.Errorf("identifying system: timeline %q: %w", row[1], err)
	}
	pos, err := ParseLSN(string(row[2]))
	if err != nil {
		return SystemInfo{}, fmt.Errorf("identifying system: %w", err)
	}
	return SystemInfo{SystemID: string(row[0]), Timeline: int32(tl), XLogPos: pos, DBName: string(row[3])}, nil
}

// Slot is a created logical replication slot.
type Slot struct {
	Name string
	// ConsistentPoint is where streaming of changes after the snapshot starts.
	ConsistentPoint LSN
	// SnapshotName can be passed to SET TRANSACTION SNAPSHOT on another
	// connection. It stays valid only until the next command on the
	// replication connection (or its close), so read it first.
	SnapshotName string
	Plugin       string
}

// CreateSlot creates a permanent logical slot for pgoutput. With
// exportSnapshot, the snapshot the slot starts from is exported so a full
// load can read exactly the data before ConsistentPoint. The syntax is the one
// PostgreSQL 10 to 15 (and later) all accept.
func CreateSlot(ctx context.Context, conn *pgconn.PgConn, name string, exportSnapshot bool) (Slot, error) {
	if err := ValidateSlotName(name); err != nil {
		return Slot{}, err
	}
	snap := "NOEXPORT_SNAPSHOT"
	if exportSnapshot {
		snap = "EXPORT_SNAPSHOT"
	}
	row, err := execOneRow(ctx, conn, "CREATE_REPLICATION_SLOT "+quoteIdent(name)+" LOGICAL pgoutput "+snap, 4)
	if err != nil {
		return Slot{}, fmt.Errorf("creating replication slot %s: %w", name, err)
	}
	cp, err := ParseLSN(string(row[1]))
	if err != nil {
		return Slot{}, fmt.Errorf("creating replication slot %s: consistent point: %w", name, err)
	}
	return Slot{Name: string(row[0]), ConsistentPoint: cp, SnapshotName: string(row[2]), Plugin: string(row[3])}, nil
}

// DropSlot drops a replication slot. With wait, it waits for a walsender
// still using the slot to let go instead of failing.
func DropSlot(ctx context.Context, conn *pgconn.PgConn, name string, wait bool) error {
	if err := ValidateSlotName(name); err != nil {
		return err
	}
	sql := "DROP_REPLICATION_SLOT " + quoteIdent(name)
	if wait {
		sql += " WAIT"
	}
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("dropping replication slot %s: %w", name, err)
	}
	return nil
}

// execOneRow runs a replication command that answers with one row of n
// text columns.
func execOneRow(ctx context.Context, conn *pgconn.PgConn, sql string, n int) ([][]byte, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != n {
		return nil, fmt.Errorf("unexpected answer to %s: want one row of %d columns", strings.Fields(sql)[0], n)
	}
	return results[0].Rows[0], nil
}

// ReplicationOptions are the pgoutput options of START_REPLICATION.
type ReplicationOptions struct {
	// ProtoVersion is pgoutput's protocol version; 0 means 1. Version 2
	// (PostgreSQL 14+) is needed for Streaming.
	ProtoVersion int
	// Publications whose tables are streamed; at least one.
	Publications []string
	// Messages asks for pg_logical_emit_message messages ('M', PG 14+).
	Messages bool
	// Streaming asks for large in-progress transactions in blocks
	// (StreamStart … StreamStop); decode them with a Decoder.
	Streaming bool
}

// StartReplication starts streaming slot from start with protocol version 1,
// the given publications and logical decoding messages, and enters CopyBoth
// mode. Then read with Receive and report with SendStandbyStatus.
func StartReplication(ctx context.Context, conn *pgconn.PgConn, slot string, start LSN, publications []string) error {
	return StartReplicationWithOptions(ctx, conn, slot, start, ReplicationOptions{
		ProtoVersion: 1, Publications: publications, Messages: true,
	})
}

// StartReplicationWithOptions is StartReplication with every option.
func StartReplicationWithOptions(ctx context.Context, conn *pgconn.PgConn, slot string, start LSN, opts ReplicationOptions) error {
	if err := ValidateSlotName(slot); err != nil {
		return err
	}
	pubs, err := publicationNames(opts.Publications)
	if err != nil {
		return fmt.Errorf("starting replication on slot %s: %w", slot, err)
	}
	version := opts.ProtoVersion
	if version == 0 {
		version = 1
	}
	if opts.Streaming && version < 2 {
		return fmt.Errorf("starting replication on slot %s: streaming needs protocol version 2, not %d", slot, version)
	}
	args := []string{
		"proto_version " + quoteLiteral(strconv.Itoa(version)),
		"publication_names " + quoteLiteral(pubs),
	}
	if opts.Messages {
		args = append(args, "messages 'true'")
	}
	if opts.Streaming {
		args = append(args, "streaming 'true'")
	}
	sql := fmt.Sprintf("START_REPLICATION SLOT %s LOGICAL %s (%s)", quoteIdent(slot), start, strings.Join(args, ", "))

	if err := ctx.Err(); err != nil {
		return err
	}
	// pgconn's Exec would read CopyData as unknown results forever; send the
	// query by hand and wait for CopyBothResponse.
	conn.Frontend().SendQuery(&pgproto3.Query{String: sql})
	if err := conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("starting replication on slot %s: sending: %w", slot, err)
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("starting replication on slot %s: %w", slot, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return nil
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(msg)
			// Leave the connection usable: the error is followed by
			// ReadyForQuery.
			if err := drainToReady(ctx, conn); err != nil {
				return fmt.Errorf("starting replication on slot %s: %w", slot, errors.Join(pgErr, err))
			}
			return fmt.Errorf("starting replication on slot %s: %w", slot, pgErr)
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return fmt.Errorf("starting replication on slot %s: unexpected %T", slot, msg)
		}
	}
}

func drainToReady(ctx context.Context, conn *pgconn.PgConn) error {
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return nil
		}
	}
}

// Receive reads the next message in CopyBoth mode: usually *pgproto3.CopyData
// (decode its Data with ParseStreamMessage), or *pgproto3.CopyDone when the
// server ends the stream. An ErrorResponse is returned as a *pgconn.PgError.
// CopyData.Data is only valid until the next Receive.
func Receive(ctx context.Context, conn *pgconn.PgConn) (pgproto3.BackendMessage, error) {
	msg, err := conn.ReceiveMessage(ctx)
	if err != nil {
		return nil, err
	}
	if e, ok := msg.(*pgproto3.ErrorResponse); ok {
		return nil, pgconn.ErrorResponseToPgError(e)
	}
	return msg, nil
}

// SendStandbyStatus sends a standby status update. Report in Flush only what
// is durably applied on the target: the server discards WAL up to it and a
// restart streams from there.
func SendStandbyStatus(ctx context.Context, conn *pgconn.PgConn, s StandbyStatus) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		// Frontend.Flush does not watch ctx; a write deadline bounds it.
		if err := conn.Conn().SetWriteDeadline(d); err == nil {
			defer func() { _ = conn.Conn().SetWriteDeadline(time.Time{}) }()
		}
	}
	conn.Frontend().Send(&pgproto3.CopyData{Data: s.Encode()})
	if err := conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("sending standby status (flush %s): %w", s.Flush, err)
	}
	return nil
}
