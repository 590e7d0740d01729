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
	// ForeignKeys this table declares.
	ForeignKeys []ForeignKey
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
	// Type is the formatted type, e.g. "numeric(12,2)", "text[]"; for DynamoDB S, N or B.
	Type    string
	NotNull bool
	// Default is the default expression, empty when none.
	Default string
	// Generated is the generation expression of a stored generated column.
	Generated string
	// Identity is "always", "by default" or empty.
	Identity string
}

// ForeignKey is a foreign-key constraint between two tables.
type ForeignKey struct {
	Name       string
	Columns    []string
	RefTable   string // qualified name
	RefColumns []string
}

// Prefix is one object-storage prefix below an endpoint's url.
type Prefix struct {
	Prefix  string
	Objects int64
	Bytes   int64
}
