// Package postgres is the PostgreSQL connector's front door: it turns an
// endpoint's settings into a pgx pool without ever putting the password in a
// loggable string (Config, Connect), lets the short read-only looks of one
// process share sessions (Borrow), classifies connection failures into
// engine.ConnectError kinds with a hint the user can act on, reports whether
// a server is ready for logical replication and what to change when it is
// not (Probe), and reads the catalog — tables, sizes, keys, columns,
// partitioning and foreign keys — with a fixed handful of set-based queries
// however many tables there are (ReadCatalog).
//
// It speaks to servers through pgx/v5 only and imports no terraform-plugin-*
// package. Supported servers are PostgreSQL 10 and later.
package postgres
