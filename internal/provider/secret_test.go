package provider

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// buildProvider builds the provider binary and returns a Terraform CLI
// configuration that points Terraform at it.
func buildProvider(t *testing.T) (cliConfig string) {
	t.Helper()
	cliConfig, err := testenv.BuildProvider(t.Context(), filepath.Join("..", ".."), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cliConfig
}

// terraformRun runs the terraform CLI from PATH in dir and returns its
// combined output and exit code.
func terraformRun(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("terraform", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("terraform %v: %v", args, err)
		return "", -1
	}
}

// TestAccSecret_neverInStatePlanOrLog runs the real provider binary through
// real terraform — so every walk is its own provider process — with TF_LOG=TRACE,
// and looks for the password everywhere Terraform writes.
func TestAccSecret_neverInStatePlanOrLog(t *testing.T) {
	pg := sharedPostgres(t)
	const password = "Zq7-never-in-state-9wX"
	const wrongPassword = "Wr0ng-never-in-output-4kP"
	db, role := newDatabase(t, pg, "acc_secret", password)
	if err := pg.Exec(t.Context(), db, "CREATE TABLE public.t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	cliConfig := buildProvider(t)
	work := t.TempDir()
	logPath := filepath.Join(work, "terraform.log")
	mainTF := fmt.Sprintf(`
terraform {
  required_providers {
    migration = { source = "migrationworks/migration" }
  }
}
variable "pw" {
  type      = string
  sensitive = true
  ephemeral = true
}
resource "migration_endpoint" "pg" {
  postgres = {
    host = "127.0.0.1", port = %d, database = %q, username = %q, sslmode = "disable"
    password_wo = var.pw, password_wo_version = 1
  }
}
data "migration_catalog" "pg" {
  endpoint_id = migration_endpoint.pg.id
}
output "tables" { value = data.migration_catalog.pg.table_count }
`, pg.Port, db, role)
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(mainTF), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"TF_CLI_CONFIG_FILE=" + cliConfig, "TF_LOG=TRACE", "TF_LOG_PATH=" + logPath,
		"TF_IN_AUTOMATION=1", "TF_VAR_pw=" + password, "PGPASSWORD=", "PGPASSFILE=/nonexistent",
	}
	var outputs []string
	run := func(wantExit int, args ...string) string {
		out, code := terraformRun(t, work, env, args...)
		outputs = append(outputs, out)
		if code != wantExit {
			t.Fatalf("terraform %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantExit, out)
		}
		return out
	}

	out := run(0, "apply", "-auto-approve", "-no-color")
	if !strings.Contains(out, "tables = 1") {
		t.Fatalf("apply did not read the catalog through the endpoint's password:\n%s", out)
	}
	// The role lacks REPLICATION: apply warns and says what to change.
	if !strings.Contains(out, "Logical Replication Not Ready") || !strings.Contains(out, "WITH REPLICATION") {
		t.Fatalf("apply did not warn that logical replication is not ready:\n%s", out)
	}
	// A fresh process refreshes the endpoint without having seen the
	// password yet: the plan must still be empty (exit 0), not an error.
	run(0, "plan", "-detailed-exitcode", "-no-color", "-out=plan.bin")
	outputs = append(outputs, run(0, "show", "-json", "plan.bin"), run(0, "show", "-json"))
	// A wrong password fails, and is not echoed either (in a second working
	// directory, so the first one's state stays as it is).
	work2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(work2, "main.tf"), []byte(mainTF), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongEnv := append(append([]string{}, env...), "TF_VAR_pw="+wrongPassword, "TF_LOG_PATH="+logPath+".wrong")
	out, code := terraformRun(t, work2, wrongEnv, "apply", "-auto-approve", "-no-color")
	outputs = append(outputs, out)
	if code == 0 || !strings.Contains(out, "authentication") {
		t.Fatalf("apply with a wrong password: exit %d, want an authentication error:\n%s", code, out)
	}

	// Everything Terraform wrote: state, saved plan (a zip), logs, command output.
	var haystacks []struct{ name, text string }
	add := func(name string, b []byte) {
		haystacks = append(haystacks, struct{ name, text string }{name, string(b)})
	}
	for _, f := range []string{"terraform.tfstate", "terraform.tfstate.backup", "terraform.log", "terraform.log.wrong"} {
		b, err := os.ReadFile(filepath.Join(work, f))
		if errors.Is(err, os.ErrNotExist) && f == "terraform.tfstate.backup" {
			continue
		}
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		add(f, b)
	}
	zr, err := zip.OpenReader(filepath.Join(work, "plan.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		add("plan.bin:"+f.Name, b)
	}
	for i, o := range outputs {
		add(fmt.Sprintf("output %d", i), []byte(o))
	}
	for _, h := range haystacks {
		for _, secret := range []string{password, wrongPassword} {
			if strings.Contains(h.text, secret) {
				t.Errorf("a password appears in %s", h.name)
			}
		}
	}
	// The search is meaningful only if the log really holds the trace of both
	// Terraform and the provider.
	text := func(name string) string {
		for _, h := range haystacks {
			if h.name == name {
				return h.text
			}
		}
		t.Fatalf("nothing read as %s", name)
		return ""
	}
	log := text("terraform.log")
	for _, want := range []string{"PlanResourceChange", "checking endpoint", "reading catalog"} {
		if !strings.Contains(log, want) {
			t.Errorf("TRACE log lacks %q: the search above proves little", want)
		}
	}
	if state := text("terraform.tfstate"); !strings.Contains(state, `"password_wo": null`) {
		t.Errorf("state does not hold password_wo as null:\n%s", state)
	}
}
