package engine

import "context"

// The connector boundary. Every copy and every change stream is a Source
// feeding a Target: the source yields bounded batches of rows, the target
// applies them and commits a checkpoint together with them, so that a crash
// at any point loses nothing and duplicates nothing (DESIGN.md, invariant 2).

// Row is one row's values in the batch's column order.
type Row []any

// Position is where a source stands after a batch: a chunk of a full load,
// or a log position of a change stream. A target persists it in the same
// transaction (or conditional write) as the batch's rows.
type Position struct {
	// Chunk names a full-load chunk, e.g. "shop.orders#12"; empty for CDC.
	Chunk string
	// LSN is the commit position of a change stream; 0 for a full load.
	LSN uint64
}

// Batch is a bounded run of rows of one table. Sources bound batches by
// bytes as well as rows, so memory never grows with a table's size.
type Batch struct {
	// Table is the qualified source table, e.g. "shop.orders".
	Table   string
	Columns []string
	Rows    []Row
	// Bytes is the approximate encoded size of Rows.
	Bytes int
	// Position is where the source stands once this batch is applied.
	Position Position
}

// Checkpoint is what a target records atomically with the data it commits.
type Checkpoint struct {
	// Task is the migration task's name: checkpoints are keyed by it.
	Task     string
	Position Position
}

// Source yields batches until it is exhausted.
type Source interface {
	// Next returns the next batch, or io.EOF when there is none. It honours ctx.
	Next(ctx context.Context) (*Batch, error)
	Close() error
}

// Target applies batches and makes them durable with a checkpoint.
type Target interface {
	// Apply stages a batch; nothing is visible or durable before Commit.
	Apply(ctx context.Context, b *Batch) error
	// Commit makes every batch applied since the last Commit durable together
	// with cp, atomically: either both are there after a crash, or neither.
	Commit(ctx context.Context, cp Checkpoint) error
	Close() error
}
