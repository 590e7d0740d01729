// Package copy owns the full load of a PostgreSQL source into a PostgreSQL
// target: it creates the plan's target tables, splits every table into
// chunks, streams each chunk as binary COPY from one consistent source
// snapshot into the target, then builds indexes and foreign keys.
//
// Progress lives on the target, in the control schema _migration, keyed by
// the task's name: a chunk's record commits in the same transaction as its
// rows, so a crash, a cancel or a timeout loses nothing and duplicates
// nothing, and the next Run copies only the chunks still missing. Chunk
// boundaries are stored when first computed, so a resumed Run reuses them.
//
// Rows are never decoded: the source's COPY TO STDOUT is piped into the
// target's COPY FROM STDIN, and memory does not grow with table size.
//
// This package never imports a terraform-plugin-* package.
package copy //nolint:predeclared // named for the step it owns; importers alias it (enginecopy)
