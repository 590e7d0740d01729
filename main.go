// Command terraform-provider-migration serves the migration provider to
// Terraform or OpenTofu over plugin protocol 6.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/provider"
)

// Generate the docs from the schema, templates and examples with the
// terraform on PATH (tfplugindocs is pinned as a tool in go.mod).
//go:generate go tool tfplugindocs generate --provider-name migration --rendered-provider-name migration

// version is set by the release build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/migrationworks/migration",
		Debug:   debug,
	})
	// Terraform is done with this process: end the PostgreSQL sessions kept
	// for the looks of its walk rather than drop them.
	postgres.CloseShared()
	if err != nil {
		log.Fatal(err.Error())
	}
}
