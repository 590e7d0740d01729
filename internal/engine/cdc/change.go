// Package cdc follows a PostgreSQL source's changes through logical
// replication (pgoutput, see package pgoutput) and applies them to a target
// exactly once: every batch commits with its checkpoint, the commit LSN of
// the last source transaction it holds, in one target transaction.
package cdc

import (
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
)

// Op is the kind of a row change.
type Op byte

// The row changes.
const (
	Insert   Op = 'I'
	Update   Op = 'U'
	Delete   Op = 'D'
	Truncate Op = 'T'
)

// Column is a source column as the stream's Relation message describes it.
type Column struct {
	Name    string
	TypeOID uint32
	TypeMod int32
	// Key is true for the columns of the replica identity.
	Key bool
}

// Value is one column's value in a change, in pgoutput's text form: Kind
// is 'n' (NULL), 'u' (unchanged TOASTed value: leave the target's value
// alone), 't' (text) or 'b' (binary). It is pgoutput's own column type, so
// decoded tuples are used as they are.
type Value = pgoutput.TupleColumn

// Change is one row change of a source table.
type Change struct {
	Op     Op
	Schema string
	Table  string
	// Columns are the table's columns when the change was made (a later
	// Relation message may add columns).
	Columns []Column
	// New is the new row (Insert, Update).
	New []Value
	// Old is the old key (OldIsKey) or the whole old row (REPLICA IDENTITY
	// FULL) of an Update or Delete; nil for an Update that kept its key.
	Old      []Value
	OldIsKey bool
	// Cascade and RestartIdentity are a Truncate's options.
	Cascade, RestartIdentity bool
}

// Txn is one committed source transaction.
type Txn struct {
	XID        uint32
	CommitLSN  pgoutput.LSN
	EndLSN     pgoutput.LSN
	CommitTime time.Time
	Changes    []Change
}
