// Package pgoutput speaks PostgreSQL's logical replication protocol with the
// pgoutput plugin: the replication commands (IDENTIFY_SYSTEM,
// CREATE_REPLICATION_SLOT … LOGICAL pgoutput, DROP_REPLICATION_SLOT,
// START_REPLICATION), the CopyBoth stream framing (XLogData, primary
// keepalive, standby status update) and the pgoutput logical messages
// (protocol version 1, plus the streamed-transaction messages of version 2).
//
// It is written directly on pgx/v5's pgconn and pgproto3: the usual helper
// library (github.com/jackc/pglogrepl) is not available to this module, so
// the wire formats below follow the PostgreSQL documentation, chapters
// "Streaming Replication Protocol" and "Logical Replication Message Formats".
//
// The decoder is a set of pure functions on []byte: they never panic, and
// return an error wrapping ErrMalformed for any input they cannot decode.
// Decoded pgoutput messages never alias their input, so a caller may keep
// them after the next Receive reuses pgconn's read buffer (XLogData.Data
// alone is a sub-slice of its frame: Parse copies it).
//
// This package owns the protocol only: what to do with the changes (batching,
// applying, checkpointing) belongs to its callers.
package pgoutput
