// Package provider is the Terraform layer of the migration provider: it
// translates Terraform configuration, plans and state into engine calls and
// engine results and errors back into state and diagnostics. All migration
// logic lives in internal/engine.
package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
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
			"engine that runs inside the provider process. The provider takes no configuration: every " +
			"connection is a `migration_endpoint`.",
	}
}

func (p *migrationProvider) Configure(_ context.Context, _ provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	resp.DataSourceData = p.data
	resp.ResourceData = p.data
}

func (p *migrationProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewEndpointResource,
	}
}

func (p *migrationProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewCatalogDataSource,
	}
}
