package provider

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

var (
	_ resource.ResourceWithConfigure        = (*endpointResource)(nil)
	_ resource.ResourceWithConfigValidators = (*endpointResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*endpointResource)(nil)
	_ resource.ResourceWithImportState      = (*endpointResource)(nil)
)

const endpointCheckTimeout = 2 * time.Minute

// endpointResource is migration_endpoint: a connection to a source or
// target, checked on create, update and read.
type endpointResource struct {
	data *providerData
}

// NewEndpointResource is the migration_endpoint constructor.
func NewEndpointResource() resource.Resource { return &endpointResource{} }

func (r *endpointResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_endpoint"
}

func (r *endpointResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

var (
	endpointURLPattern = regexp.MustCompile(`^https?://[^\s/]+`)
	roleARNPattern     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/.+$`)
)

func (r *endpointResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replaceOnKindChange := objectplanmodifier.RequiresReplaceIf(kindChanged,
		"Switching an endpoint to another engine replaces it.",
		"Switching an endpoint to another engine replaces it.")

	resp.Schema = schema.Schema{
		MarkdownDescription: "A connection to a migration source or target: PostgreSQL, DynamoDB or S3 (or a local " +
			"directory through `file://`). Set exactly one of `postgres`, `dynamodb` and `s3`.\n\n" +
			"Create, update and read connect to the endpoint and record what they learn — the server version and, " +
			"for PostgreSQL, whether logical replication is ready — and warn with what to change when it is not. " +
			"Changing connection attributes updates the endpoint in place; switching to another engine replaces it.\n\n" +
			"The `id` is a secret-free URL of every connection setting (for example " +
			"`postgres://migrator@db.internal:5432/shop?connect_timeout=10&sslmode=verify-full`), known at plan time, " +
			"which other resources and `terraform import` use.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Secret-free URL of the connection settings; it changes when they change.",
			},
			"postgres": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "A PostgreSQL database (version 10 or later), reached with pgx.",
				PlanModifiers:       []planmodifier.Object{replaceOnKindChange},
				Attributes: map[string]schema.Attribute{
					"host": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Host name or IP address of the server.",
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"port": schema.Int64Attribute{
						Optional: true, Computed: true,
						Default:             int64default.StaticInt64(5432),
						MarkdownDescription: "TCP port, 1–65535. Defaults to `5432`.",
						Validators:          []validator.Int64{int64validator.Between(1, 65535)},
					},
					"database": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Database name.",
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"username": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Role to log in as. Logical replication (CDC) needs a role with `REPLICATION`.",
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"password_wo": schema.StringAttribute{
						Optional: true, WriteOnly: true, Sensitive: true,
						MarkdownDescription: "Password, write-only: Terraform sends it to the provider on every plan and apply " +
							"and never stores it in state or plans. Leave it unset to use `PGPASSWORD`, `PGPASSFILE` or " +
							"`~/.pgpass`, as libpq does. Requires Terraform 1.11 or later.",
					},
					"password_wo_version": schema.Int64Attribute{
						Optional: true,
						MarkdownDescription: "Any number; change it when the password changes, so that the endpoint is " +
							"updated and the new password checked.",
					},
					"sslmode": schema.StringAttribute{
						Optional: true, Computed: true,
						Default: stringdefault.StaticString("require"),
						MarkdownDescription: "TLS mode: `disable`, `require`, `verify-ca` or `verify-full`. " +
							"Defaults to `require`.",
						Validators: []validator.String{stringvalidator.OneOf(postgres.SSLModes...)},
					},
					"sslrootcert": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Path to the CA certificate bundle used by `verify-ca` and `verify-full`.",
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"connect_timeout": schema.Int64Attribute{
						Optional: true, Computed: true,
						Default:             int64default.StaticInt64(10),
						MarkdownDescription: "Seconds to wait for a connection, 1–300. Defaults to `10`.",
						Validators:          []validator.Int64{int64validator.Between(1, 300)},
					},
				},
			},
			"dynamodb": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Amazon DynamoDB in one region, or a DynamoDB-compatible server through `endpoint_url`. " +
					"Credentials come from the standard AWS chain (environment, shared config, SSO, instance role).",
				PlanModifiers: []planmodifier.Object{replaceOnKindChange},
				Attributes: map[string]schema.Attribute{
					"region": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "AWS region, for example `eu-west-1`.",
						Validators:          []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z0-9-]+$`), "must be an AWS region name such as eu-west-1")},
					},
					"endpoint_url": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Endpoint URL of a local or compatible server, for example `http://127.0.0.1:8000`.",
						Validators:          []validator.String{stringvalidator.RegexMatches(endpointURLPattern, "must be an http:// or https:// URL")},
					},
					"profile": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Named profile of the shared AWS configuration.",
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"role_arn": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "IAM role to assume on top of the credential chain.",
						Validators:          []validator.String{stringvalidator.RegexMatches(roleARNPattern, "must be an IAM role ARN such as arn:aws:iam::123456789012:role/migrator")},
					},
				},
			},
			"s3": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Objects under an S3 prefix, or files under a local directory.",
				PlanModifiers:       []planmodifier.Object{replaceOnKindChange},
				Attributes: map[string]schema.Attribute{
					"url": schema.StringAttribute{
						Required: true,
						MarkdownDescription: "`s3://bucket/prefix/` or `file:///absolute/dir/`. Each migrated table " +
							"gets its own prefix below it.",
						Validators: []validator.String{s3URLValidator{}},
					},
					"region": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "AWS region of the bucket. Defaults to the credential chain's region (`AWS_REGION`, the profile); with `endpoint_url` and no region anywhere, `us-east-1`.",
					},
					"endpoint_url": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Endpoint URL of an S3-compatible server, for example `http://127.0.0.1:9000`.",
						Validators:          []validator.String{stringvalidator.RegexMatches(endpointURLPattern, "must be an http:// or https:// URL")},
					},
					"force_path_style": schema.BoolAttribute{
						Optional: true, Computed: true,
						Default:             booldefault.StaticBool(false),
						MarkdownDescription: "Address buckets as `endpoint/bucket` rather than `bucket.endpoint`; most S3-compatible servers need it. Defaults to `false`.",
					},
					"format": schema.StringAttribute{
						Optional: true, Computed: true,
						Default:             stringdefault.StaticString("jsonl"),
						MarkdownDescription: "File format: `jsonl`, `csv` or `parquet`. Defaults to `jsonl`.",
						Validators:          []validator.String{stringvalidator.OneOf(s3.Formats...)},
					},
					"compression": schema.StringAttribute{
						Optional: true, Computed: true,
						Default:             stringdefault.StaticString("none"),
						MarkdownDescription: "Compression: `none`, `gzip` or `zstd`. Defaults to `none`.",
						Validators:          []validator.String{stringvalidator.OneOf(s3.Compressions...)},
					},
				},
			},
			"server_version": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "PostgreSQL server version seen by the last check; null for other engines.",
			},
			"logical_replication": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "PostgreSQL only: whether the server and role are ready for change data capture.",
				Attributes:          replicationSchemaAttributes(),
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Read: true, Update: true}),
		},
	}
}

func replicationSchemaAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"ready":                 schema.BoolAttribute{Computed: true, MarkdownDescription: "True when `wal_level` is `logical`, the role may replicate, and a replication slot and WAL sender are free."},
		"wal_level":             schema.StringAttribute{Computed: true, MarkdownDescription: "The server's `wal_level`; CDC needs `logical`."},
		"replication_privilege": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the role has `REPLICATION` (or is a superuser)."},
		"free_slots":            schema.Int64Attribute{Computed: true, MarkdownDescription: "Replication slots still free."},
		"max_slots":             schema.Int64Attribute{Computed: true, MarkdownDescription: "The server's `max_replication_slots`."},
		"problems":              schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "What to change for CDC to work, one sentence each; empty when ready."},
	}
}

func (r *endpointResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("postgres"), path.MatchRoot("dynamodb"), path.MatchRoot("s3")),
	}
}

// kindChanged requires replacement when an engine block appears or disappears
// on an existing endpoint: that is a switch to another engine.
func kindChanged(_ context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	resp.RequiresReplace = req.StateValue.IsNull() != req.PlanValue.IsNull()
}

// ModifyPlan sets the id, which depends only on configuration, so that
// references to it are known at plan time; and it keeps this walk's password.
func (r *endpointResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan endpointModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, known, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() || !known {
		return
	}
	id := spec.ID()
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"), id)...)
	if r.data != nil {
		r.data.credentials.put(id, configPassword(ctx, req.Config))
	}
}

func (r *endpointResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.checkAndSave(ctx, req.Plan, req.Config, &resp.State, &resp.Diagnostics, timeouts.Value.Create)
}

func (r *endpointResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.checkAndSave(ctx, req.Plan, req.Config, &resp.State, &resp.Diagnostics, timeouts.Value.Update)
}

// checkAndSave is create and update: connect with the planned settings and
// the configured password, within the operation's timeout, and save the id
// and what the check learned.
func (r *endpointResource) checkAndSave(ctx context.Context, plan tfsdk.Plan, config tfsdk.Config, state *tfsdk.State, diags *diag.Diagnostics,
	timeout func(timeouts.Value, context.Context, time.Duration) (time.Duration, diag.Diagnostics)) {
	var m endpointModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	limit, d := timeout(m.Timeouts, ctx, endpointCheckTimeout)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	spec, _, d := m.spec(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	password := configPassword(ctx, config)
	if spec.Postgres != nil {
		spec.Postgres.Password = password
	}
	id := spec.ID()
	ctx = tflog.SetField(ctx, "endpoint", id)
	tflog.Info(ctx, "checking endpoint")
	facts, err := endpoint.Check(ctx, spec)
	if err != nil {
		addConnectError(diags, "Unable to Use Endpoint", spec, err)
		return
	}
	if r.data != nil {
		r.data.credentials.put(id, password)
	}
	m.ID = types.StringValue(id)
	diags.Append(m.setFacts(ctx, facts)...)
	warnIfNotReady(diags, spec, facts)
	tflog.Info(ctx, "endpoint checked", map[string]any{"server_version": facts.ServerVersion})
	diags.Append(state.Set(ctx, m)...)
}

func (r *endpointResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state endpointModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Read(ctx, endpointCheckTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	spec, _, diags := state.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	known := false
	if spec.Postgres != nil && r.data != nil {
		spec.Postgres.Password, known = r.data.credentials.password(id, spec.Postgres)
	}
	if spec.Postgres != nil && !known && state.usesPassword(ctx) && !postgres.AmbientPassword() {
		// Refresh runs before this walk has seen password_wo. A login
		// without it can only fail (and litter the server log): keep the
		// facts of the last check; the next create or update checks again.
		tflog.Debug(ctx, "password not known during refresh; keeping the facts of the last check", map[string]any{"endpoint": id})
		return
	}
	ctx = tflog.SetField(ctx, "endpoint", id)
	facts, err := endpoint.Check(ctx, spec)
	if err != nil {
		ce, ok := engine.AsConnectError(err)
		switch {
		case ok && ce.Kind == engine.ConnectDatabaseMissing:
			tflog.Warn(ctx, "endpoint no longer exists; removing it from state", map[string]any{"error": err.Error()})
			resp.State.RemoveResource(ctx)
		case ok && ce.Kind == engine.ConnectAuthFailed && spec.Postgres != nil && !known:
			// Refresh runs before this walk has seen password_wo; keep the
			// facts of the last check rather than report a false failure.
			tflog.Debug(ctx, "password not known during refresh; keeping the facts of the last check")
		default:
			resp.Diagnostics.AddWarning("Unable to Refresh Endpoint",
				fmt.Sprintf("Could not check %s during refresh; keeping the facts of the last check.\n\n%s", spec.Target(), err))
		}
		return
	}
	if spec.Postgres != nil && known {
		r.data.credentials.put(id, spec.Postgres.Password)
	}
	resp.Diagnostics.Append(state.setFacts(ctx, facts)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Delete forgets the endpoint: it owns nothing on the server.
func (r *endpointResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
}

// ImportState rebuilds the configuration from the id (see package endpoint);
// the password cannot be imported and is read from configuration or libpq's
// sources on the next plan.
func (r *endpointResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	spec, err := endpoint.ParseID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid Endpoint Import ID",
			fmt.Sprintf("%s\n\nImport an endpoint by its id, as shown in state, for example "+
				"postgres://migrator@db.internal:5432/shop?sslmode=verify-full, dynamodb://eu-west-1 or s3://bucket/prefix/?format=jsonl.", err))
		return
	}
	m := modelFromSpec(spec)
	m.ID = types.StringValue(spec.ID())
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

// configPassword reads postgres.password_wo from configuration; empty when
// unset, unknown or the endpoint is not PostgreSQL.
func configPassword(ctx context.Context, config tfsdk.Config) string {
	var pw types.String
	if diags := config.GetAttribute(ctx, path.Root("postgres").AtName("password_wo"), &pw); diags.HasError() {
		// No postgres block: there is no password to read.
		return ""
	}
	return pw.ValueString()
}

// addConnectError turns an engine error into a diagnostic on the attribute
// the user should look at, saying what to do.
func addConnectError(diags *diag.Diagnostics, summary string, spec endpoint.Spec, err error) {
	ce, ok := engine.AsConnectError(err)
	if !ok {
		diags.AddError(summary, fmt.Sprintf("Checking %s failed.\n\n%s", spec.Target(), err))
		return
	}
	block := string(spec.Kind())
	at := path.Root(block)
	var what string
	switch ce.Kind {
	case engine.ConnectUnreachable:
		what = fmt.Sprintf("Nothing answered at %s.", ce.Target)
		if spec.Postgres != nil {
			at = at.AtName("host")
		}
	case engine.ConnectAuthFailed:
		what = fmt.Sprintf("%s: authentication failed.", ce.Target)
		if spec.Postgres != nil {
			at = at.AtName("password_wo")
		}
	case engine.ConnectDatabaseMissing:
		what = fmt.Sprintf("%s does not exist.", ce.Target)
		switch {
		case spec.Postgres != nil:
			at = at.AtName("database")
		case spec.S3 != nil:
			at = at.AtName("url")
		}
	case engine.ConnectTLS:
		what = fmt.Sprintf("The TLS connection to %s failed.", ce.Target)
		if spec.Postgres != nil {
			at = at.AtName("sslmode")
		}
	case engine.ConnectPermission:
		what = fmt.Sprintf("%s: permission denied.", ce.Target)
	default:
		what = fmt.Sprintf("Could not connect to %s.", ce.Target)
	}
	detail := what
	if len(at.Steps()) > 1 {
		// Terraform points nested-attribute errors at the resource block, so name the attribute.
		detail = "Attribute " + at.String() + ": " + what
	}
	if ce.Hint != "" {
		detail += " " + upperFirst(ce.Hint) + "."
	}
	if ce.Err != nil {
		detail += "\n\nError: " + ce.Err.Error()
	}
	diags.AddAttributeError(at, summary, detail)
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// warnIfNotReady tells the user what to change before CDC can work.
func warnIfNotReady(diags *diag.Diagnostics, spec endpoint.Spec, facts endpoint.Facts) {
	if facts.Postgres == nil || facts.Postgres.LogicalReady {
		return
	}
	detail := fmt.Sprintf("%s is usable for a full load, but not yet for change data capture "+
		"(mode full_load_and_cdc or cdc_only):", spec.Target())
	for _, p := range facts.Postgres.Problems {
		detail += "\n  - " + p
	}
	diags.AddAttributeWarning(path.Root("postgres"), "Logical Replication Not Ready", detail)
}

var replicationAttrTypes = map[string]attr.Type{
	"ready":                 types.BoolType,
	"wal_level":             types.StringType,
	"replication_privilege": types.BoolType,
	"free_slots":            types.Int64Type,
	"max_slots":             types.Int64Type,
	"problems":              types.ListType{ElemType: types.StringType},
}

// replicationValue renders PostgreSQL readiness facts; null for other engines.
func replicationValue(f *postgres.Facts) (types.Object, diag.Diagnostics) {
	if f == nil {
		return types.ObjectNull(replicationAttrTypes), nil
	}
	problems, diags := types.ListValueFrom(context.Background(), types.StringType, append([]string{}, f.Problems...))
	obj, d := types.ObjectValue(replicationAttrTypes, map[string]attr.Value{
		"ready":                 types.BoolValue(f.LogicalReady),
		"wal_level":             types.StringValue(f.WalLevel),
		"replication_privilege": types.BoolValue(f.HasReplication),
		"free_slots":            types.Int64Value(int64(f.FreeReplicationSlots)),
		"max_slots":             types.Int64Value(int64(f.MaxReplicationSlots)),
		"problems":              problems,
	})
	diags.Append(d...)
	return obj, diags
}
