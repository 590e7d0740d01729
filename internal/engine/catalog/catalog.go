// Package catalog holds what an endpoint contains — tables, columns, keys,
// sizes, partitioning and foreign keys for PostgreSQL; tables, key schema
// and item counts for DynamoDB; prefixes for object storage — in one
// engine-neutral shape that the planner and the Terraform data source read.
package catalog

// Catalog is one endpoint's assessment.
type Catalog struct {
	// Engine is "postgres", "dynamodb" or "s3".
	Engine string
	// ServerVersion is the server's own version string, when it has one.
	ServerVersion string
	// Tables are sorted by schema, then name.
	Tables []Table
	// Prefixes are object-storage prefixes (one per table written there), sorted.
	Prefixes []Prefix
	// Types are the user-defined enums and domains the read tables' columns
	// use (directly, as an array's element, or as a domain's base type),
	// ordered so that a domain's base type comes before the domain.
	// PostgreSQL only.
	Types []Type
}

// Table is a relation (PostgreSQL) or a table (DynamoDB).
type Table struct {
	Schema string // PostgreSQL schema; empty for DynamoDB
	Name   string
	// Kind: "table", "partitioned" (a partitioned root) for PostgreSQL; "table" for DynamoDB.
	Kind string
	// EstimatedRows comes from planner statistics (reltuples) or DynamoDB's ItemCount;
	// -1 when the table was never analyzed.
	EstimatedRows int64
	// Bytes is the on-disk size including TOAST and indexes (PostgreSQL), or TableSizeBytes.
	Bytes int64
	// PrimaryKey lists key columns in key order; for DynamoDB [partition key, sort key].
	PrimaryKey []string
	// ReplicaIdentity is default, full, index or nothing (PostgreSQL only).
	ReplicaIdentity string
	// Columns in ordinal order. For DynamoDB only the key attributes are known.
	Columns []Column
	// PartitionKey is the partition strategy and key, e.g. "RANGE (created_at)", for a partitioned root.
	PartitionKey string
	// Partitions are the qualified names of a partitioned root's direct partitions.
	Partitions []string
	// PartitionOf is the qualified name of the parent when this table is a partition.
	PartitionOf string
	// PartitionBound is the bound of a partition, as pg_get_expr prints it:
	// "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')", "DEFAULT"; empty
	// for a table that is not a partition.
	PartitionBound string
	// ForeignKeys this table declares.
	ForeignKeys []ForeignKey
	// Indexes are the table's valid indexes, sorted by name, including the
	// ones backing its primary key and unique constraints (PostgreSQL only).
	Indexes []Index
	// Checks are the table's CHECK constraints, sorted by name (PostgreSQL only).
	Checks []Check
}

// QualifiedName is schema.name, or name when there is no schema.
func (t Table) QualifiedName() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Column is one column (or key attribute).
type Column struct {
	Name string
	// Type is the formatted type, e.g. "numeric(12,2)", "text[]", "shop.mood"
	// (types outside pg_catalog are schema-qualified); for DynamoDB S, N or B.
	Type    string
	NotNull bool
	// Default is the default expression, empty when none.
	Default string
	// Generated is the generation expression of a stored generated column.
	Generated string
	// Identity is "always", "by default" or empty.
	Identity string
	// UserType is the qualified name (schema.name, unquoted) of the
	// user-defined enum or domain the column has, or whose array it has;
	// empty for built-in types. Catalog.Types describes it.
	UserType string
}

// ForeignKey is a foreign-key constraint between two tables.
type ForeignKey struct {
	Name       string
	Columns    []string
	RefTable   string // qualified name
	RefColumns []string
	// Definition is the constraint as pg_get_constraintdef prints it, with
	// its match type, actions and deferrability
	// ("FOREIGN KEY (a) REFERENCES s.t(id) ON DELETE CASCADE"); PostgreSQL only.
	Definition string
}

// Index is one index of a PostgreSQL table.
type Index struct {
	Name string
	// Definition is the CREATE INDEX statement pg_get_indexdef prints
	// (schema-qualified).
	Definition string
	Primary    bool
	Unique     bool
	// ReplicaIdentity is true for the index REPLICA IDENTITY USING INDEX names.
	ReplicaIdentity bool
	// Columns are the key columns in key order; empty when any key is an
	// expression.
	Columns []string
	// Include are the non-key columns of an INCLUDE clause.
	Include []string
	// Predicate is a partial index's WHERE expression; empty when none.
	Predicate string
	// ConstraintName names the PRIMARY KEY, UNIQUE or EXCLUDE constraint
	// the index backs; empty for a plain index.
	ConstraintName string
}

// Check is a CHECK constraint of a PostgreSQL table.
type Check struct {
	Name string
	// Definition is pg_get_constraintdef's text, e.g. "CHECK ((amount > (0)::numeric))"
	// (with " NOT VALID" appended when the constraint was never validated).
	Definition string
}

// Type is a user-defined PostgreSQL enum or domain.
type Type struct {
	Schema string
	Name   string
	// Kind is "enum" or "domain".
	Kind string
	// Labels are an enum's labels in sort order.
	Labels []string
	// BaseType is a domain's underlying type as format_type prints it.
	BaseType string
	// BaseUserType is the qualified name of the enum or domain BaseType is
	// (or is an array of); empty when the base type is built in.
	BaseUserType string
	// NotNull, Default and Checks are a domain's constraints; Checks hold
	// pg_get_constraintdef's text ("CHECK ((VALUE > 0))").
	NotNull bool
	Default string
	Checks  []string
}

// QualifiedName is schema.name.
func (t Type) QualifiedName() string { return t.Schema + "." + t.Name }

// Prefix is one object-storage prefix below an endpoint's url.
type Prefix struct {
	Prefix  string
	Objects int64
	Bytes   int64
}
