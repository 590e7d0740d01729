package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/dynamodb"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

type endpointModel struct {
	ID                 types.String   `tfsdk:"id"`
	Postgres           types.Object   `tfsdk:"postgres"`
	DynamoDB           types.Object   `tfsdk:"dynamodb"`
	S3                 types.Object   `tfsdk:"s3"`
	ServerVersion      types.String   `tfsdk:"server_version"`
	LogicalReplication types.Object   `tfsdk:"logical_replication"`
	Timeouts           timeouts.Value `tfsdk:"timeouts"`
}

type postgresModel struct {
	Host              types.String `tfsdk:"host"`
	Port              types.Int64  `tfsdk:"port"`
	Database          types.String `tfsdk:"database"`
	Username          types.String `tfsdk:"username"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
	SSLMode           types.String `tfsdk:"sslmode"`
	SSLRootCert       types.String `tfsdk:"sslrootcert"`
	ConnectTimeout    types.Int64  `tfsdk:"connect_timeout"`
}

type dynamodbModel struct {
	Region      types.String `tfsdk:"region"`
	EndpointURL types.String `tfsdk:"endpoint_url"`
	Profile     types.String `tfsdk:"profile"`
	RoleARN     types.String `tfsdk:"role_arn"`
}

type s3Model struct {
	URL            types.String `tfsdk:"url"`
	Region         types.String `tfsdk:"region"`
	EndpointURL    types.String `tfsdk:"endpoint_url"`
	ForcePathStyle types.Bool   `tfsdk:"force_path_style"`
	Format         types.String `tfsdk:"format"`
	Compression    types.String `tfsdk:"compression"`
}

var (
	postgresAttrTypes = map[string]attr.Type{
		"host": types.StringType, "port": types.Int64Type, "database": types.StringType,
		"username": types.StringType, "password_wo": types.StringType, "password_wo_version": types.Int64Type,
		"sslmode": types.StringType, "sslrootcert": types.StringType, "connect_timeout": types.Int64Type,
	}
	dynamodbAttrTypes = map[string]attr.Type{
		"region": types.StringType, "endpoint_url": types.StringType, "profile": types.StringType, "role_arn": types.StringType,
	}
	s3AttrTypes = map[string]attr.Type{
		"url": types.StringType, "region": types.StringType, "endpoint_url": types.StringType,
		"force_path_style": types.BoolType, "format": types.StringType, "compression": types.StringType,
	}
)

// allKnown reports whether every value is known (null counts as known).
func allKnown(vs ...attr.Value) bool {
	for _, v := range vs {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// spec translates the model into an engine spec. known is false when a
// value is not known yet (at plan time); the spec is then incomplete.
// The password is never taken from the model: it is write-only.
func (m endpointModel) spec(ctx context.Context) (endpoint.Spec, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	opts := basetypes.ObjectAsOptions{}
	switch {
	case !m.Postgres.IsNull() && !m.Postgres.IsUnknown():
		var p postgresModel
		diags.Append(m.Postgres.As(ctx, &p, opts)...)
		known := allKnown(p.Host, p.Port, p.Database, p.Username, p.SSLMode, p.SSLRootCert, p.ConnectTimeout)
		return endpoint.Spec{Postgres: &postgres.Config{
			Host: p.Host.ValueString(), Port: int(p.Port.ValueInt64()), Database: p.Database.ValueString(),
			Username: p.Username.ValueString(), SSLMode: p.SSLMode.ValueString(), SSLRootCert: p.SSLRootCert.ValueString(),
			ConnectTimeout: time.Duration(p.ConnectTimeout.ValueInt64()) * time.Second,
		}}, known, diags
	case !m.DynamoDB.IsNull() && !m.DynamoDB.IsUnknown():
		var d dynamodbModel
		diags.Append(m.DynamoDB.As(ctx, &d, opts)...)
		known := allKnown(d.Region, d.EndpointURL, d.Profile, d.RoleARN)
		return endpoint.Spec{DynamoDB: &dynamodb.Config{
			Region: d.Region.ValueString(), EndpointURL: d.EndpointURL.ValueString(),
			Profile: d.Profile.ValueString(), RoleARN: d.RoleARN.ValueString(),
		}}, known, diags
	case !m.S3.IsNull() && !m.S3.IsUnknown():
		var s s3Model
		diags.Append(m.S3.As(ctx, &s, opts)...)
		known := allKnown(s.URL, s.Region, s.EndpointURL, s.ForcePathStyle, s.Format, s.Compression)
		return endpoint.Spec{S3: &s3.Config{
			URL: s.URL.ValueString(), Region: s.Region.ValueString(), EndpointURL: s.EndpointURL.ValueString(),
			ForcePathStyle: s.ForcePathStyle.ValueBool(), Format: s.Format.ValueString(), Compression: s.Compression.ValueString(),
		}}, known, diags
	default:
		return endpoint.Spec{}, false, diags
	}
}

// optString maps "" to null, for optional attributes without a default.
func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// modelFromSpec is the state an import starts from.
func modelFromSpec(spec endpoint.Spec) endpointModel {
	m := endpointModel{
		Postgres:           types.ObjectNull(postgresAttrTypes),
		DynamoDB:           types.ObjectNull(dynamodbAttrTypes),
		S3:                 types.ObjectNull(s3AttrTypes),
		ServerVersion:      types.StringNull(),
		LogicalReplication: types.ObjectNull(replicationAttrTypes),
		Timeouts:           timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "read": types.StringType, "update": types.StringType})},
	}
	switch {
	case spec.Postgres != nil:
		c := spec.Postgres
		sslmode := c.SSLMode
		if sslmode == "" {
			sslmode = "require"
		}
		ct := int64(c.ConnectTimeout / time.Second)
		if ct == 0 {
			ct = 10
		}
		m.Postgres = types.ObjectValueMust(postgresAttrTypes, map[string]attr.Value{
			"host": types.StringValue(c.Host), "port": types.Int64Value(int64(c.Port)),
			"database": types.StringValue(c.Database), "username": types.StringValue(c.Username),
			"password_wo": types.StringNull(), "password_wo_version": types.Int64Null(),
			"sslmode": types.StringValue(sslmode), "sslrootcert": optString(c.SSLRootCert),
			"connect_timeout": types.Int64Value(ct),
		})
	case spec.DynamoDB != nil:
		c := spec.DynamoDB
		m.DynamoDB = types.ObjectValueMust(dynamodbAttrTypes, map[string]attr.Value{
			"region": types.StringValue(c.Region), "endpoint_url": optString(c.EndpointURL),
			"profile": optString(c.Profile), "role_arn": optString(c.RoleARN),
		})
	case spec.S3 != nil:
		c := spec.S3
		format, compression := c.Format, c.Compression
		if format == "" {
			format = "jsonl"
		}
		if compression == "" {
			compression = "none"
		}
		m.S3 = types.ObjectValueMust(s3AttrTypes, map[string]attr.Value{
			"url": types.StringValue(c.URL), "region": optString(c.Region), "endpoint_url": optString(c.EndpointURL),
			"force_path_style": types.BoolValue(c.ForcePathStyle),
			"format":           types.StringValue(format), "compression": types.StringValue(compression),
		})
	}
	return m
}

// setFacts records what a check learned.
func (m *endpointModel) setFacts(_ context.Context, f endpoint.Facts) diag.Diagnostics {
	m.ServerVersion = optString(f.ServerVersion)
	repl, diags := replicationValue(f.Postgres)
	m.LogicalReplication = repl
	return diags
}

// usesPassword reports whether the endpoint is configured with password_wo,
// as its password_wo_version in state tells.
func (m endpointModel) usesPassword(ctx context.Context) bool {
	if m.Postgres.IsNull() || m.Postgres.IsUnknown() {
		return false
	}
	var p postgresModel
	if diags := m.Postgres.As(ctx, &p, basetypes.ObjectAsOptions{}); diags.HasError() {
		return false
	}
	return !p.PasswordWOVersion.IsNull()
}
