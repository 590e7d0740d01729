package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAccProviderSchema asks the real terraform for the built provider's
// schema, as `terraform providers schema -json` shows it to users and tools.
func TestAccProviderSchema(t *testing.T) {
	skipUnlessAcc(t)
	cliConfig := buildProvider(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
terraform {
  required_providers {
    migration = { source = "migrationworks/migration" }
  }
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := terraformRun(t, dir, []string{"TF_CLI_CONFIG_FILE=" + cliConfig}, "providers", "schema", "-json")
	if code != 0 {
		t.Fatalf("terraform providers schema -json: exit %d\n%s", code, out)
	}
	// Terraform prints the dev_overrides warning on stderr, merged here; the JSON is the last line.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var schema struct {
		ProviderSchemas map[string]struct {
			ResourceSchemas   map[string]json.RawMessage `json:"resource_schemas"`
			DataSourceSchemas map[string]json.RawMessage `json:"data_source_schemas"`
		} `json:"provider_schemas"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &schema); err != nil {
		t.Fatalf("decoding the schema: %v\n%s", err, out)
	}
	p, ok := schema.ProviderSchemas["registry.terraform.io/migrationworks/migration"]
	if !ok {
		t.Fatalf("no schema for registry.terraform.io/migrationworks/migration in %v", schema.ProviderSchemas)
	}
	var resources, dataSources []string
	for k := range p.ResourceSchemas {
		resources = append(resources, k)
	}
	for k := range p.DataSourceSchemas {
		dataSources = append(dataSources, k)
	}
	slices.Sort(resources)
	slices.Sort(dataSources)
	if !slices.Equal(resources, []string{"migration_endpoint", "migration_task"}) || !slices.Equal(dataSources, []string{"migration_catalog"}) {
		t.Fatalf("resources %v, data sources %v; want [migration_endpoint migration_task] and [migration_catalog]", resources, dataSources)
	}
}
