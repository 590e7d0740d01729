// Package provider is the Terraform layer of the migration provider: it
// translates Terraform configuration, plans and state into engine calls and
// engine results and errors back into state and diagnostics. All migration
// logic lives in internal/engine.
package provider

import (
	"context"
	"fmt"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ provider.Provider = (*migrationProvider)(nil)

// migrationProvider is one provider process's instance. Terraform starts a
// new one for every graph walk (validate, plan, apply), so nothing here
// outlives a walk.
type migrationProvider struct {
	version string
	data    *providerData
}

// providerData is what resources and data sources of one provider instance share.
type providerData struct {
	credentials *credentialStore
}

type providerModel struct {
	PostgresPasswords types.Map `tfsdk:"postgres_passwords"`
}

// providerDataFrom is what every resource's and data source's Configure
// does: take the provider instance's shared data, which is nil while
// Terraform validates configuration before configuring the provider.
func providerDataFrom(v any, diags *diag.Diagnostics) *providerData {
	if v == nil {
		return nil
	}
	data, ok := v.(*providerData)
	if !ok {
		diags.AddError("Unexpected Provider Data",
			fmt.Sprintf("Expected *providerData, got %T. This is a bug in the provider; please report it.", v))
	}
	return data
}

// New returns a constructor of the provider for the given version.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &migrationProvider{
			version: version,
			data:    &providerData{credentials: newCredentialStore()},
		}
	}
}

func (p *migrationProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "migration"
	resp.Version = p.version
}

func (p *migrationProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Moves a production database to its new home — PostgreSQL, DynamoDB or S3 — " +
			"through `terraform plan` and `terraform apply`, with an embedded bulk-copy and change-data-capture " +
			"engine that runs inside the provider process. Every connection is a `migration_endpoint`; the " +
			"provider's own configuration is optional.",
		Attributes: map[string]schema.Attribute{
			"postgres_passwords": schema.MapAttribute{
				Optional: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "Passwords of PostgreSQL endpoints, keyed `user@host:port/database` (the fields of a " +
					"`.pgpass` line), for the runs in which Terraform does not send an endpoint's `password_wo`: an " +
					"endpoint's write-only password reaches the provider only when that endpoint is planned or applied, " +
					"so an apply that changes only a task, and every destroy, need the password from here (or from " +
					"`PGPASSWORD`, `PGPASSFILE` or `~/.pgpass`). Set it from ephemeral variables: provider " +
					"configuration is never stored in state or plan files.",
				Validators: []validator.Map{mapvalidator.KeysAre(stringvalidator.RegexMatches(passKeyPattern,
					"must be user@host:port/database, for example migrator@db.internal:5432/shop"))},
			},
		},
	}
}

var passKeyPattern = regexp.MustCompile(`^[^@\s]+@[^:\s]+:\d{1,5}/\S+$`)

func (p *migrationProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !m.PostgresPasswords.IsUnknown() {
		var byKey map[string]string
		resp.Diagnostics.Append(m.PostgresPasswords.ElementsAs(ctx, &byKey, false)...)
		p.data.credentials.setByKey(byKey)
	}
	resp.DataSourceData = p.data
	resp.ResourceData = p.data
}

func (p *migrationProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewEndpointResource,
		NewTaskResource,
	}
}

func (p *migrationProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewCatalogDataSource,
	}
}
