package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// Filter narrows the catalog.
type Filter struct {
	// Schemas to read; empty means every schema except pg_catalog,
	// information_schema, pg_toast* and pg_temp*.
	Schemas []string
}

// catalogLockTimeout bounds how long a catalog read waits behind a lock
// (pg_total_relation_size takes ACCESS SHARE, so an ALTER TABLE in progress
// would otherwise stall a terraform plan indefinitely). A variable so tests
// need not wait that long.
var catalogLockTimeout = "5s"

// minServerVersionNum is PostgreSQL 10: declarative partitioning, identity
// columns and pg_get_partkeydef start there.
const minServerVersionNum = 100000

// tablesSQL selects ordinary and partitioned tables in the filter. $1 is
// the schema list; an empty list means every user schema.
const tablesSQL = `
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'p',
       c.reltuples::float8, c.relreplident::text,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) ELSE '' END,
       COALESCE(pg_catalog.pg_total_relation_size(c.oid), 0),
       CASE WHEN c.relispartition THEN COALESCE(pg_catalog.pg_get_expr(c.relpartbound, c.oid), '') ELSE '' END
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND CASE WHEN cardinality($1::text[]) = 0
           THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
           ELSE n.nspname = ANY ($1::text[])
      END`

// userTypeSQL is the oid of the enum or domain a type (%[1]s, a pg_type
// alias) is or is an array of, NULL for anything else. Types of pg_catalog
// and information_schema exist in every database and are not user types.
const userTypeSQL = `(SELECT ut.oid FROM pg_catalog.pg_type ut
  JOIN pg_catalog.pg_namespace un ON un.oid = ut.typnamespace
  WHERE ut.oid = CASE WHEN %[1]s.typtype IN ('e', 'd') THEN %[1]s.oid WHEN %[1]s.typcategory = 'A' THEN %[1]s.typelem END
    AND ut.typtype IN ('e', 'd') AND un.nspname NOT IN ('pg_catalog', 'information_schema'))`

// columnsSQL: %s is the generated-column expression, which needs PG 12.
var columnsSQL = `
SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
       COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), %s, a.attidentity::text,
       COALESCE((SELECT n.nspname || '.' || t.typname FROM pg_catalog.pg_type t
                 JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                 WHERE t.oid = ` + fmt.Sprintf(userTypeSQL, "ty") + `), '')
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`

// constraintsSQL reads primary keys, check constraints and foreign keys
// with their columns in key order. %s skips the per-partition clones of a foreign key declared on
// a partitioned table (conparentid, PG 11), so each key is listed once,
// where it was declared.
const constraintsSQL = `
SELECT con.conrelid, con.contype::text, con.conname::text,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       COALESCE(rn.nspname::text, ''), COALESCE(rc.relname::text, ''),
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY ($1::oid[])
  AND (con.contype IN ('p', 'c') OR (con.contype = 'f'%s))
ORDER BY con.conrelid, con.conname`

// indexesSQL reads every valid index with its key and INCLUDE columns (an
// empty name stands for an expression) and the constraint it backs. %[1]s
// is the number of key columns (indnkeyatts, PG 11; indnatts before).
const indexesSQL = `
SELECT i.indrelid, ic.relname::text, pg_catalog.pg_get_indexdef(i.indexrelid),
       i.indisprimary, i.indisunique, i.indisreplident,
       ARRAY(SELECT COALESCE(a.attname::text, '')
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= %[1]s ORDER BY k.ord),
       ARRAY(SELECT COALESCE(a.attname::text, '')
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord > %[1]s ORDER BY k.ord),
       COALESCE(pg_catalog.pg_get_expr(i.indpred, i.indrelid), ''),
       COALESCE(con.conname::text, '')
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indrelid = ANY ($1::oid[]) AND i.indisvalid
ORDER BY i.indrelid, ic.relname`

// typesSQL reads the enums and domains the tables' columns use, and the
// types those domains are built on, recursively. depth orders a domain's
// base type before the domain.
var typesSQL = `
WITH RECURSIVE used(oid, depth) AS (
    SELECT DISTINCT ` + fmt.Sprintf(userTypeSQL, "t") + `, 0
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
  UNION
    SELECT ` + fmt.Sprintf(userTypeSQL, "b") + `, u.depth + 1
    FROM used u
    JOIN pg_catalog.pg_type d ON d.oid = u.oid AND d.typtype = 'd'
    JOIN pg_catalog.pg_type b ON b.oid = d.typbasetype
    WHERE u.depth < 32
)
SELECT n.nspname::text, t.typname::text, t.typtype::text, max(u.depth),
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) ELSE '' END,
       COALESCE((SELECT bn.nspname || '.' || bt.typname FROM pg_catalog.pg_type bt
                 JOIN pg_catalog.pg_namespace bn ON bn.oid = bt.typnamespace
                 JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype
                 WHERE bt.oid = ` + fmt.Sprintf(userTypeSQL, "b") + `), ''),
       t.typnotnull, COALESCE(pg_catalog.pg_get_expr(t.typdefaultbin, 0), ''),
       ARRAY(SELECT pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c
             WHERE c.contypid = t.oid AND c.contype = 'c' ORDER BY c.conname)
FROM used u
JOIN pg_catalog.pg_type t ON t.oid = u.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
GROUP BY n.nspname, t.typname, t.typtype, t.oid`

// partitionsSQL lists parent/partition pairs where either side was read,
// so a partition's parent and a root's partitions are named even when they
// live in a schema outside the filter.
const partitionsSQL = `
SELECT i.inhparent, pn.nspname::text, p.relname::text, i.inhrelid, cn.nspname::text, c.relname::text
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.relispartition AND (i.inhparent = ANY ($1::oid[]) OR i.inhrelid = ANY ($1::oid[]))`

// partitionTotalsSQL sums sizes over each partitioned root's whole tree and
// row estimates over its leaves (a partitioned table holds no rows itself).
const partitionTotalsSQL = `
WITH RECURSIVE tree(root, relid) AS (
    SELECT c.oid, c.oid FROM pg_catalog.pg_class c
    WHERE c.oid = ANY ($1::oid[]) AND c.relkind = 'p'
  UNION ALL
    SELECT t.root, i.inhrelid FROM tree t JOIN pg_catalog.pg_inherits i ON i.inhparent = t.relid
)
SELECT t.root,
       COALESCE(sum(COALESCE(pg_catalog.pg_total_relation_size(t.relid), 0)), 0)::int8,
       COALESCE(sum(c.reltuples) FILTER (WHERE c.relkind <> 'p' AND c.reltuples >= 0), 0)::float8,
       count(*) FILTER (WHERE c.relkind <> 'p' AND c.reltuples >= 0),
       count(*) FILTER (WHERE c.relkind <> 'p')
FROM tree t
JOIN pg_catalog.pg_class c ON c.oid = t.relid
GROUP BY t.root`

// ReadCatalog returns every ordinary and partitioned table in the filter,
// sorted by schema and name (byte order, whatever the database's collation),
// with sizes, keys, columns, partitioning, foreign keys, indexes and check
// constraints, and the enums and domains the columns use. Types, defaults
// and expressions are printed with an empty search_path, so every name
// outside pg_catalog is schema-qualified and the text means the same in
// another database (DDL for a target is built from it). It runs a fixed
// number of queries however many tables there are, in one read-only
// transaction, and gives up on a table locked for longer than
// catalogLockTimeout rather than hang.
func ReadCatalog(ctx context.Context, pool *pgxpool.Pool, f Filter) (*catalog.Catalog, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w", err)
	}
	// Read-only: rolling back is the same as committing and never fails in a
	// way that matters once the reads are done.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	var version string
	var versionNum int
	if err := tx.QueryRow(ctx,
		`SELECT current_setting('server_version'), current_setting('server_version_num')::int,
		        set_config('lock_timeout', $1, true), set_config('search_path', '', true)`, catalogLockTimeout,
	).Scan(&version, &versionNum, nil, nil); err != nil {
		return nil, fmt.Errorf("reading catalog: server version: %w", err)
	}
	if versionNum < minServerVersionNum {
		return nil, fmt.Errorf("reading catalog: PostgreSQL %s is not supported; version 10 or later is required", trimVersion(version))
	}

	schemas := f.Schemas
	if schemas == nil {
		schemas = []string{}
	}
	tables, oids, byOID, err := readTables(ctx, tx, schemas)
	if err != nil {
		return nil, err
	}
	cat := &catalog.Catalog{Engine: "postgres", ServerVersion: trimVersion(version), Tables: []catalog.Table{}}
	if len(tables) == 0 {
		return cat, nil
	}
	if err := readColumns(ctx, tx, versionNum, oids, tables, byOID); err != nil {
		return nil, err
	}
	if err := readConstraints(ctx, tx, versionNum, oids, tables, byOID); err != nil {
		return nil, err
	}
	if err := readIndexes(ctx, tx, versionNum, oids, tables, byOID); err != nil {
		return nil, err
	}
	if err := readPartitions(ctx, tx, oids, tables, byOID); err != nil {
		return nil, err
	}
	if cat.Types, err = readTypes(ctx, tx, oids); err != nil {
		return nil, err
	}

	slices.SortFunc(tables, func(a, b catalog.Table) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Name, b.Name))
	})
	cat.Tables = tables
	return cat, nil
}

func readTables(ctx context.Context, tx pgx.Tx, schemas []string) ([]catalog.Table, []uint32, map[uint32]int, error) {
	rows, err := tx.Query(ctx, tablesSQL, schemas)
	if err != nil {
		return nil, nil, nil, catalogErr("tables", err)
	}
	defer rows.Close()
	var (
		tables []catalog.Table
		oids   []uint32
		byOID  = map[uint32]int{}
	)
	for rows.Next() {
		var (
			oid         uint32
			t           catalog.Table
			partitioned bool
			reltuples   float64
			replident   string
		)
		if err := rows.Scan(&oid, &t.Schema, &t.Name, &partitioned, &reltuples, &replident, &t.PartitionKey, &t.Bytes, &t.PartitionBound); err != nil {
			return nil, nil, nil, catalogErr("tables", err)
		}
		t.Kind = "table"
		if partitioned {
			t.Kind = "partitioned"
		}
		t.EstimatedRows = estimateRows(reltuples)
		t.ReplicaIdentity = replicaIdentity(replident)
		t.PrimaryKey = []string{}
		byOID[oid] = len(tables)
		tables = append(tables, t)
		oids = append(oids, oid)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, catalogErr("tables", err)
	}
	return tables, oids, byOID, nil
}

func readColumns(ctx context.Context, tx pgx.Tx, versionNum int, oids []uint32, tables []catalog.Table, byOID map[uint32]int) error {
	generated := `''`
	if versionNum >= 120000 {
		generated = `a.attgenerated::text`
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(columnsSQL, generated), oids)
	if err != nil {
		return catalogErr("columns", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			oid                 uint32
			col                 catalog.Column
			expr, gen, identity string
		)
		if err := rows.Scan(&oid, &col.Name, &col.Type, &col.NotNull, &expr, &gen, &identity, &col.UserType); err != nil {
			return catalogErr("columns", err)
		}
		// A stored generated column keeps its expression in pg_attrdef too.
		if gen == "s" {
			col.Generated = expr
		} else {
			col.Default = expr
		}
		switch identity {
		case "a":
			col.Identity = "always"
		case "d":
			col.Identity = "by default"
		}
		if i, ok := byOID[oid]; ok {
			tables[i].Columns = append(tables[i].Columns, col)
		}
	}
	if err := rows.Err(); err != nil {
		return catalogErr("columns", err)
	}
	return nil
}

func readConstraints(ctx context.Context, tx pgx.Tx, versionNum int, oids []uint32, tables []catalog.Table, byOID map[uint32]int) error {
	declaredOnly := ""
	if versionNum >= 110000 {
		declaredOnly = " AND con.conparentid = 0"
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(constraintsSQL, declaredOnly), oids)
	if err != nil {
		return catalogErr("keys", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			oid                 uint32
			contype, name       string
			cols, refCols       []string
			refSchema, refTable string
			def                 string
		)
		if err := rows.Scan(&oid, &contype, &name, &cols, &refSchema, &refTable, &refCols, &def); err != nil {
			return catalogErr("keys", err)
		}
		i, ok := byOID[oid]
		if !ok {
			continue
		}
		switch contype {
		case "p":
			tables[i].PrimaryKey = cols
		case "c":
			tables[i].Checks = append(tables[i].Checks, catalog.Check{Name: name, Definition: def})
		case "f":
			tables[i].ForeignKeys = append(tables[i].ForeignKeys, catalog.ForeignKey{
				Name:       name,
				Columns:    cols,
				RefTable:   refSchema + "." + refTable,
				RefColumns: refCols,
				Definition: def,
			})
		}
	}
	if err := rows.Err(); err != nil {
		return catalogErr("keys", err)
	}
	return nil
}

func readIndexes(ctx context.Context, tx pgx.Tx, versionNum int, oids []uint32, tables []catalog.Table, byOID map[uint32]int) error {
	keyCount := "i.indnatts"
	if versionNum >= 110000 {
		keyCount = "i.indnkeyatts"
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(indexesSQL, keyCount), oids)
	if err != nil {
		return catalogErr("indexes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			oid uint32
			idx catalog.Index
		)
		if err := rows.Scan(&oid, &idx.Name, &idx.Definition, &idx.Primary, &idx.Unique, &idx.ReplicaIdentity,
			&idx.Columns, &idx.Include, &idx.Predicate, &idx.ConstraintName); err != nil {
			return catalogErr("indexes", err)
		}
		// An empty name is an expression key: the index is not a plain
		// list of columns.
		if slices.Contains(idx.Columns, "") {
			idx.Columns = []string{}
		}
		if len(idx.Include) == 0 {
			idx.Include = nil
		}
		if i, ok := byOID[oid]; ok {
			tables[i].Indexes = append(tables[i].Indexes, idx)
		}
	}
	if err := rows.Err(); err != nil {
		return catalogErr("indexes", err)
	}
	return nil
}

func readTypes(ctx context.Context, tx pgx.Tx, oids []uint32) ([]catalog.Type, error) {
	rows, err := tx.Query(ctx, typesSQL, oids)
	if err != nil {
		return nil, catalogErr("types", err)
	}
	defer rows.Close()
	type typeAt struct {
		catalog.Type
		depth int
	}
	var found []typeAt
	for rows.Next() {
		var (
			t    typeAt
			kind string
		)
		if err := rows.Scan(&t.Schema, &t.Name, &kind, &t.depth, &t.Labels, &t.BaseType, &t.BaseUserType,
			&t.NotNull, &t.Default, &t.Checks); err != nil {
			return nil, catalogErr("types", err)
		}
		t.Kind = "enum"
		if kind == "d" {
			t.Kind = "domain"
			t.Labels = nil
		} else {
			t.Checks = nil
		}
		found = append(found, t)
	}
	if err := rows.Err(); err != nil {
		return nil, catalogErr("types", err)
	}
	// Deepest first: a domain's base type sits deeper than the domain.
	slices.SortFunc(found, func(a, b typeAt) int {
		return cmp.Or(cmp.Compare(b.depth, a.depth), cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Name, b.Name))
	})
	types := make([]catalog.Type, len(found))
	for i, t := range found {
		types[i] = t.Type
	}
	return types, nil
}

func readPartitions(ctx context.Context, tx pgx.Tx, oids []uint32, tables []catalog.Table, byOID map[uint32]int) error {
	rows, err := tx.Query(ctx, partitionsSQL, oids)
	if err != nil {
		return catalogErr("partitions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			parentOID, childOID                          uint32
			parentSchema, parentName, childSchema, child string
		)
		if err := rows.Scan(&parentOID, &parentSchema, &parentName, &childOID, &childSchema, &child); err != nil {
			return catalogErr("partitions", err)
		}
		if i, ok := byOID[parentOID]; ok {
			tables[i].Partitions = append(tables[i].Partitions, childSchema+"."+child)
		}
		if i, ok := byOID[childOID]; ok {
			tables[i].PartitionOf = parentSchema + "." + parentName
		}
	}
	if err := rows.Err(); err != nil {
		return catalogErr("partitions", err)
	}
	for i := range tables {
		slices.Sort(tables[i].Partitions)
	}

	rows, err = tx.Query(ctx, partitionTotalsSQL, oids)
	if err != nil {
		return catalogErr("partition sizes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rootOID                uint32
			bytes                  int64
			rowSum                 float64
			analyzedLeaves, leaves int64
		)
		if err := rows.Scan(&rootOID, &bytes, &rowSum, &analyzedLeaves, &leaves); err != nil {
			return catalogErr("partition sizes", err)
		}
		i, ok := byOID[rootOID]
		if !ok {
			continue
		}
		tables[i].Bytes = bytes
		switch {
		case leaves == 0:
			tables[i].EstimatedRows = 0 // no partitions: it cannot hold a row
		case analyzedLeaves == 0:
			tables[i].EstimatedRows = -1
		default:
			// Leaves never analyzed are left out: an empty partition is never
			// auto-analyzed, and one such partition must not hide the rest.
			tables[i].EstimatedRows = estimateRows(rowSum)
		}
	}
	if err := rows.Err(); err != nil {
		return catalogErr("partition sizes", err)
	}
	return nil
}

// estimateRows turns reltuples (a float, -1 when never analyzed on
// PostgreSQL 14+) into a row count.
func estimateRows(reltuples float64) int64 {
	if reltuples < 0 {
		return -1
	}
	return int64(math.Round(reltuples))
}

func replicaIdentity(c string) string {
	switch c {
	case "d":
		return "default"
	case "f":
		return "full"
	case "i":
		return "index"
	case "n":
		return "nothing"
	}
	return c
}

func catalogErr(what string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
		return fmt.Errorf("reading catalog %s: a table stayed locked for over %s (an ALTER TABLE, VACUUM FULL or similar is running); try again when it is done: %w", what, catalogLockTimeout, err)
	}
	return fmt.Errorf("reading catalog %s: %w", what, err)
}
