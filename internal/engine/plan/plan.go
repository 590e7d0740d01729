// Package plan decides what a full load moves and how it maps: it resolves a
// task's table rules against the source catalog (and the target's, when the
// target exists), and produces per table the target name, the column
// mapping with its transforms, the DDL to create what is missing, and the
// risks a reviewer should read. It does no I/O: the same inputs always give
// the same plan, so terraform plan and apply agree.
package plan

import "github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"

// Rule is one entry of a task's `tables` list.
type Rule struct {
	// Source is an exact "schema.table" or a "schema.*" wildcard. An exact
	// rule overrides a wildcard for its table.
	Source string
	// Target is "table" (keeps the source schema) or "schema.table"; empty
	// keeps schema and name. Not allowed with a wildcard source.
	Target string
	// Where is a SQL boolean expression over the source table's columns
	// selecting the rows to copy; empty copies every row.
	Where string
	// Include lists the only columns to copy; empty means all.
	Include []string
	// Exclude lists columns not to copy.
	Exclude []string
	// Rename maps a source column to its target name.
	Rename map[string]string
	// Transform maps a source column to a transform: "sha256", "redact" or
	// "cast:TYPE" (e.g. "cast:bigint").
	Transform map[string]string
}

// Transform kinds.
const (
	TransformNone   = ""
	TransformSHA256 = "sha256"
	TransformRedact = "redact"
	TransformCast   = "cast"
)

// Name is a qualified table name.
type Name struct {
	Schema string
	Name   string
}

// String is schema.name, unquoted, for messages and keys.
func (n Name) String() string { return n.Schema + "." + n.Name }

// Column is one copied column.
type Column struct {
	Source     string
	Target     string
	SourceType string // as format_type prints it
	TargetType string // the type the target column has (or will be created with)
	// Transform is one of the Transform kinds; CastType is the type of a cast.
	Transform string
	CastType  string
	NotNull   bool
	// Expr is the SQL expression the source SELECT reads for this column:
	// the quoted column itself, or its transform (e.g.
	// encode(sha256(convert_to("email"::text, 'UTF8')), 'hex')). Its type is
	// exactly TargetType, so binary COPY streams it to the target unchanged.
	Expr string
}

// Table is one table's part of the plan.
type Table struct {
	// Source is the source table as the catalog read it. A partitioned
	// root is copied once, as itself; its partitions are not planned apart.
	Source catalog.Table
	Target Name
	Where  string
	// Columns are the copied columns in target order. Generated columns are
	// not copied: the target computes them.
	Columns []Column
	// Key is the source key (primary key, else replica-identity index)
	// chunks are split by; empty means ctid block ranges.
	Key []string
	// Passthrough is true when no transform applies and every target type
	// equals its source type: binary COPY streams without decoding rows.
	Passthrough bool
	// Exists is true when the target table already exists (and is compatible).
	Exists bool
	// CreateDDL creates what the target lacks, without keys or indexes:
	// schema, types (enums, domains), the table. Empty when Exists.
	CreateDDL []string
	// IndexDDL builds the primary key and indexes after the load.
	IndexDDL []string
	// ForeignKeyDDL adds foreign keys after every table is loaded.
	ForeignKeyDDL []string
	// Risks are the lossy or risky parts of the mapping.
	Risks []Risk
	// Mapping is the rule that selected the table, as configured.
	Mapping Rule
}

// Risk kinds a reviewer is warned about.
const (
	RiskNoKey          = "no_key"          // no primary key: chunks by ctid; CDC needs REPLICA IDENTITY FULL
	RiskNarrowing      = "narrowing"       // target type holds less than the source type (cast, or existing table)
	RiskTruncation     = "truncation"      // character length shrinks
	RiskExcludeNotNull = "exclude_notnull" // an excluded column is NOT NULL without default on an existing target
	RiskTransform      = "transform"       // values are rewritten (sha256, redact)
	RiskDefault        = "default"         // a column default is not recreated (a sequence's nextval, or a default of the pre-cast type)
	RiskSkipped        = "skipped"         // an index, constraint or foreign key is not recreated on the target
)

// Risk is one risky mapping.
type Risk struct {
	Kind    string
	Column  string // empty for table-level risks
	Message string
}

// Plan is the whole mapping of a task, tables in load order (referenced
// tables before the tables that reference them, where there is an order).
type Plan struct {
	Tables []Table
}

// Problem is bad input found while building a plan. Rule is the index of the
// rule at fault (-1 when none: Field is then "tables", the list itself);
// Field names its attribute ("source", "target", "where",
// "columns.include", "columns.exclude", "columns.rename",
// "columns.transform"); "target" also stands for an existing target table
// that does not fit. Attribute, when set, names a top-level attribute of
// the task instead (such as "mode" or "source_endpoint_id"); Rule and Field
// are then unused.
type Problem struct {
	Rule      int
	Field     string
	Summary   string
	Detail    string
	Attribute string
}

func (p Problem) Error() string { return p.Summary + ": " + p.Detail }
