package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/datasource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
)

var _ datasource.DataSourceWithConfigure = (*catalogDataSource)(nil)

const catalogReadTimeout = 5 * time.Minute

// catalogDataSource is migration_catalog: the assessment of an endpoint.
type catalogDataSource struct {
	data *providerData
}

// NewCatalogDataSource is the migration_catalog constructor.
func NewCatalogDataSource() datasource.DataSource { return &catalogDataSource{} }

type catalogModel struct {
	EndpointID         types.String         `tfsdk:"endpoint_id"`
	Schemas            types.List           `tfsdk:"schemas"`
	ID                 types.String         `tfsdk:"id"`
	Engine             types.String         `tfsdk:"engine"`
	ServerVersion      types.String         `tfsdk:"server_version"`
	TableCount         types.Int64          `tfsdk:"table_count"`
	EstimatedRows      types.Int64          `tfsdk:"estimated_rows"`
	TotalBytes         types.Int64          `tfsdk:"total_bytes"`
	TablesWithoutKey   []string             `tfsdk:"tables_without_primary_key"`
	Tables             []catalogTableModel  `tfsdk:"tables"`
	Prefixes           []catalogPrefixModel `tfsdk:"prefixes"`
	LogicalReplication types.Object         `tfsdk:"logical_replication"`
	Timeouts           timeouts.Value       `tfsdk:"timeouts"`
}

type catalogTableModel struct {
	Schema          types.String         `tfsdk:"schema"`
	Name            types.String         `tfsdk:"name"`
	QualifiedName   types.String         `tfsdk:"qualified_name"`
	Kind            types.String         `tfsdk:"kind"`
	EstimatedRows   types.Int64          `tfsdk:"estimated_rows"`
	Bytes           types.Int64          `tfsdk:"bytes"`
	PrimaryKey      []string             `tfsdk:"primary_key"`
	ReplicaIdentity types.String         `tfsdk:"replica_identity"`
	PartitionKey    types.String         `tfsdk:"partition_key"`
	Partitions      []string             `tfsdk:"partitions"`
	PartitionOf     types.String         `tfsdk:"partition_of"`
	Columns         []catalogColumnModel `tfsdk:"columns"`
	ForeignKeys     []catalogForeignKey  `tfsdk:"foreign_keys"`
}

type catalogColumnModel struct {
	Name      types.String `tfsdk:"name"`
	Type      types.String `tfsdk:"type"`
	Nullable  types.Bool   `tfsdk:"nullable"`
	Default   types.String `tfsdk:"default"`
	Generated types.String `tfsdk:"generated"`
	Identity  types.String `tfsdk:"identity"`
}

type catalogForeignKey struct {
	Name              types.String `tfsdk:"name"`
	Columns           []string     `tfsdk:"columns"`
	ReferencedTable   types.String `tfsdk:"referenced_table"`
	ReferencedColumns []string     `tfsdk:"referenced_columns"`
}

type catalogPrefixModel struct {
	Prefix  types.String `tfsdk:"prefix"`
	Objects types.Int64  `tfsdk:"objects"`
	Bytes   types.Int64  `tfsdk:"bytes"`
}

func (d *catalogDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_catalog"
}

func (d *catalogDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *catalogDataSource) Schema(ctx context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	num := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Computed: true, MarkdownDescription: desc}
	}
	strs := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The assessment step: what an endpoint holds, read at plan time. For PostgreSQL every " +
			"table with its estimated rows and size, primary key or replica identity, columns, partitioning and " +
			"foreign keys, and whether logical replication is ready; for DynamoDB the tables with their key schema " +
			"and item counts; for S3 and `file://` the prefixes below the url. Statistics are the server's " +
			"estimates (`reltuples`, DynamoDB's six-hourly `ItemCount`), not counts: reading is cheap even for " +
			"large databases.",
		Attributes: map[string]schema.Attribute{
			"endpoint_id": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The `id` of a `migration_endpoint`. Reference the resource " +
					"(`migration_endpoint.legacy.id`) so that its password reaches this read.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"schemas": schema.ListAttribute{
				Optional: true, ElementType: types.StringType,
				MarkdownDescription: "PostgreSQL only: read just these schemas. Defaults to every schema but the system ones.",
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			},
			"id":             str("The endpoint id."),
			"engine":         str("`postgres`, `dynamodb` or `s3`."),
			"server_version": str("PostgreSQL server version; null for other engines."),
			"table_count":    num("Number of tables (a partitioned table and each of its partitions count once each)."),
			"estimated_rows": num("Sum of the estimated rows of the tables that hold data (partitioned roots are not added twice)."),
			"total_bytes":    num("Sum of the sizes of the tables that hold data, indexes and TOAST included."),
			"tables_without_primary_key": strs("Qualified names of tables with neither a primary key nor a replica " +
				"identity index: they copy, but change data capture needs `REPLICA IDENTITY FULL` or a key."),
			"tables": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Tables, sorted by schema and name.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"schema":           str("PostgreSQL schema; null for DynamoDB."),
					"name":             str("Table name."),
					"qualified_name":   str("`schema.name` (PostgreSQL) or the name (DynamoDB)."),
					"kind":             str("`table`, or `partitioned` for a partitioned root."),
					"estimated_rows":   num("Planner estimate of the rows (`-1` when never analyzed) or DynamoDB's item count."),
					"bytes":            num("Size in bytes, indexes and TOAST included."),
					"primary_key":      strs("Primary-key columns in key order; for DynamoDB partition key then sort key."),
					"replica_identity": str("`default`, `full`, `index` or `nothing` (PostgreSQL)."),
					"partition_key":    str("Partitioning of a partitioned root, e.g. `RANGE (created_at)`."),
					"partitions":       strs("Qualified names of a partitioned root's partitions."),
					"partition_of":     str("Qualified name of the partitioned root this table belongs to."),
					"columns": schema.ListNestedAttribute{
						Computed:            true,
						MarkdownDescription: "Columns in ordinal order (for DynamoDB, the key attributes).",
						NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
							"name":      str("Column name."),
							"type":      str("Type as PostgreSQL formats it (`numeric(12,2)`, `text[]`), or `S`, `N`, `B`."),
							"nullable":  schema.BoolAttribute{Computed: true, MarkdownDescription: "False for NOT NULL columns."},
							"default":   str("Default expression."),
							"generated": str("Expression of a stored generated column."),
							"identity":  str("`always` or `by default` for identity columns."),
						}},
					},
					"foreign_keys": schema.ListNestedAttribute{
						Computed:            true,
						MarkdownDescription: "Foreign keys the table declares.",
						NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
							"name":               str("Constraint name."),
							"columns":            strs("Referencing columns."),
							"referenced_table":   str("Qualified name of the referenced table."),
							"referenced_columns": strs("Referenced columns."),
						}},
					},
				}},
			},
			"prefixes": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "S3 and `file://`: the prefixes directly below the url, sorted.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"prefix":  str("Prefix relative to the url, ending in `/`."),
					"objects": num("Objects below the prefix."),
					"bytes":   num("Bytes below the prefix."),
				}},
			},
			"logical_replication": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "PostgreSQL only: whether the server and role are ready for change data capture.",
				Attributes:          replicationDataSourceAttributes(),
			},
			"timeouts": timeouts.Attributes(ctx),
		},
	}
}

func replicationDataSourceAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"ready":                 schema.BoolAttribute{Computed: true, MarkdownDescription: "True when `wal_level` is `logical`, the role may replicate, and a replication slot and WAL sender are free."},
		"wal_level":             schema.StringAttribute{Computed: true, MarkdownDescription: "The server's `wal_level`; CDC needs `logical`."},
		"replication_privilege": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the role has `REPLICATION` (or is a superuser)."},
		"free_slots":            schema.Int64Attribute{Computed: true, MarkdownDescription: "Replication slots still free."},
		"max_slots":             schema.Int64Attribute{Computed: true, MarkdownDescription: "The server's `max_replication_slots`."},
		"problems":              schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "What to change for CDC to work, one sentence each; empty when ready."},
	}
}

func (d *catalogDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m catalogModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Read(ctx, catalogReadTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	id := m.EndpointID.ValueString()
	spec, known, err := d.data.resolveEndpoint(id)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint_id"), "Invalid Endpoint ID",
			fmt.Sprintf("%s\n\nSet endpoint_id to the id of a migration_endpoint, e.g. migration_endpoint.legacy.id.", err))
		return
	}
	var schemas []string
	resp.Diagnostics.Append(m.Schemas.ElementsAs(ctx, &schemas, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = tflog.SetField(ctx, "endpoint", id)
	tflog.Info(ctx, "reading catalog")
	started := time.Now()
	cat, facts, err := endpoint.ReadCatalog(ctx, spec, schemas)
	if err != nil {
		if ce, ok := engine.AsConnectError(err); ok && ce.Kind == engine.ConnectAuthFailed && spec.Postgres != nil && !known {
			resp.Diagnostics.AddAttributeError(path.Root("endpoint_id"), "Endpoint Password Not Known",
				fmt.Sprintf("%s rejected the login. %s Referencing the endpoint (endpoint_id = migration_endpoint.NAME.id) "+
					"makes Terraform plan it first, so its password_wo is known.\n\nError: %s", spec.Target(), passwordHint(spec), err))
			return
		}
		addConnectError(&resp.Diagnostics, "Unable to Read Catalog", spec, err)
		return
	}
	tflog.Info(ctx, "catalog read", map[string]any{"tables": len(cat.Tables), "prefixes": len(cat.Prefixes), "elapsed_ms": time.Since(started).Milliseconds()})

	m.ID = types.StringValue(id)
	m.Engine = types.StringValue(cat.Engine)
	m.ServerVersion = optString(facts.ServerVersion)
	fillCatalog(&m, cat)
	m.LogicalReplication, diags = replicationValue(facts.Postgres)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// fillCatalog renders the engine's catalog into the data source model.
func fillCatalog(m *catalogModel, cat *catalog.Catalog) {
	var rows, bytes int64
	m.TablesWithoutKey = []string{}
	m.Tables = make([]catalogTableModel, 0, len(cat.Tables))
	for _, t := range cat.Tables {
		// A partitioned root's size and rows are its partitions': count them once.
		if t.Kind != "partitioned" {
			if t.EstimatedRows > 0 {
				rows += t.EstimatedRows
			}
			bytes += t.Bytes
		}
		if cat.Engine == "postgres" && t.Kind != "partitioned" && len(t.PrimaryKey) == 0 &&
			t.ReplicaIdentity != "full" && t.ReplicaIdentity != "index" {
			m.TablesWithoutKey = append(m.TablesWithoutKey, t.QualifiedName())
		}
		tm := catalogTableModel{
			Schema: optString(t.Schema), Name: types.StringValue(t.Name), QualifiedName: types.StringValue(t.QualifiedName()),
			Kind: types.StringValue(t.Kind), EstimatedRows: types.Int64Value(t.EstimatedRows), Bytes: types.Int64Value(t.Bytes),
			PrimaryKey: nonNil(t.PrimaryKey), ReplicaIdentity: optString(t.ReplicaIdentity),
			PartitionKey: optString(t.PartitionKey), Partitions: nonNil(t.Partitions), PartitionOf: optString(t.PartitionOf),
			Columns: make([]catalogColumnModel, 0, len(t.Columns)), ForeignKeys: make([]catalogForeignKey, 0, len(t.ForeignKeys)),
		}
		for _, c := range t.Columns {
			tm.Columns = append(tm.Columns, catalogColumnModel{
				Name: types.StringValue(c.Name), Type: types.StringValue(c.Type), Nullable: types.BoolValue(!c.NotNull),
				Default: optString(c.Default), Generated: optString(c.Generated), Identity: optString(c.Identity),
			})
		}
		for _, fk := range t.ForeignKeys {
			tm.ForeignKeys = append(tm.ForeignKeys, catalogForeignKey{
				Name: types.StringValue(fk.Name), Columns: nonNil(fk.Columns),
				ReferencedTable: types.StringValue(fk.RefTable), ReferencedColumns: nonNil(fk.RefColumns),
			})
		}
		m.Tables = append(m.Tables, tm)
	}
	m.Prefixes = make([]catalogPrefixModel, 0, len(cat.Prefixes))
	for _, p := range cat.Prefixes {
		m.Prefixes = append(m.Prefixes, catalogPrefixModel{
			Prefix: types.StringValue(p.Prefix), Objects: types.Int64Value(p.Objects), Bytes: types.Int64Value(p.Bytes),
		})
		bytes += p.Bytes
	}
	m.TableCount = types.Int64Value(int64(len(cat.Tables)))
	m.EstimatedRows = types.Int64Value(rows)
	m.TotalBytes = types.Int64Value(bytes)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
