package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ProviderAddress is the provider's source address, as configurations name it.
const ProviderAddress = "migrationworks/migration"

// BuildProvider builds the provider from the repository at repo into dir and
// writes a Terraform CLI configuration whose dev_overrides point Terraform at
// that binary, as a provider developer's would. Point TF_CLI_CONFIG_FILE at
// the returned path; no `terraform init` is needed.
func BuildProvider(ctx context.Context, repo, dir string) (cliConfig string, err error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "terraform-provider-migration"), ".")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the provider in %s: %w\n%s", repo, err, out)
	}
	cliConfig = filepath.Join(dir, "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", ProviderAddress, dir)
	if err := os.WriteFile(cliConfig, []byte(rc), 0o600); err != nil {
		return "", fmt.Errorf("writing the Terraform CLI configuration: %w", err)
	}
	return cliConfig, nil
}
