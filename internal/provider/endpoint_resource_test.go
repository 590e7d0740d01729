package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

// Write-only attributes need Terraform 1.11.
var requireWriteOnly = []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)}

func postgresEndpointConfig(host string, port int, db, user, password string, extra string) string {
	return fmt.Sprintf(`
resource "migration_endpoint" "pg" {
  postgres = {
    host                = %q
    port                = %d
    database            = %q
    username            = %q
    password_wo         = %q
    password_wo_version = 1
    sslmode             = "disable"
    %s
  }
}
`, host, port, db, user, password, extra)
}

func TestAccEndpoint_postgres(t *testing.T) {
	pg := sharedPostgres(t)
	db, role := newDatabase(t, pg, "acc_endpoint", "s3cret-endpoint-pw")
	id := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?connect_timeout=10&sslmode=disable", role, pg.Port, db)
	idUpdated := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?connect_timeout=25&sslmode=disable", role, pg.Port, db)
	dir := t.TempDir()

	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: postgresEndpointConfig("127.0.0.1", pg.Port, db, role, "s3cret-endpoint-pw", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("id"), knownvalue.StringExact(id)),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("server_version"), knownvalue.StringRegexp(regexp.MustCompile(`^1[5-9]\.\d+`))),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("postgres").AtMapKey("password_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("postgres").AtMapKey("port"), knownvalue.Int64Exact(int64(pg.Port))),
					// The role has no REPLICATION: not ready, and the problems say so.
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("wal_level"), knownvalue.StringExact("logical")),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("ready"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("replication_privilege"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("problems"),
						knownvalue.ListPartial(map[int]knownvalue.Check{0: knownvalue.StringRegexp(regexp.MustCompile(`REPLICATION`))})),
				},
			},
			// Idempotent: the next plan is empty.
			{
				Config:   postgresEndpointConfig("127.0.0.1", pg.Port, db, role, "s3cret-endpoint-pw", ""),
				PlanOnly: true,
			},
			// Import by id; the password cannot be imported.
			{
				ResourceName:                         "migration_endpoint.pg",
				ImportState:                          true,
				ImportStateId:                        id,
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "id",
				ImportStateVerifyIgnore:              []string{"postgres.password_wo_version"},
			},
			// A connection attribute changes in place, and so does the id.
			{
				Config: postgresEndpointConfig("127.0.0.1", pg.Port, db, role, "s3cret-endpoint-pw", "connect_timeout = 25"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("migration_endpoint.pg", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("id"), knownvalue.StringExact(idUpdated)),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			// Switching the engine replaces the endpoint.
			{
				Config: fmt.Sprintf(`
resource "migration_endpoint" "pg" {
  s3 = { url = "file://%s/" }
}`, dir),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("migration_endpoint.pg", plancheck.ResourceActionDestroyBeforeCreate),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("postgres"), knownvalue.Null()),
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("server_version"), knownvalue.Null()),
				},
			},
		},
	})
}

func TestAccEndpoint_postgresReplicationReady(t *testing.T) {
	pg := sharedPostgres(t)
	db, role := newDatabase(t, pg, "acc_repl", "repl-pw", "REPLICATION")
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: postgresEndpointConfig("127.0.0.1", pg.Port, db, role, "repl-pw", ""),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("ready"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("problems"), knownvalue.ListSizeExact(0)),
				statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("logical_replication").AtMapKey("free_slots"), knownvalue.Int64Exact(20)),
			},
		}},
	})
}

// A rotated password is picked up through password_wo_version.
func TestAccEndpoint_postgresPasswordRotation(t *testing.T) {
	pg := sharedPostgres(t)
	db, role := newDatabase(t, pg, "acc_rotate", "first-pw")
	cfg := func(pw string, version int) string {
		return fmt.Sprintf(`
resource "migration_endpoint" "pg" {
  postgres = {
    host = "127.0.0.1", port = %d, database = %q, username = %q, sslmode = "disable"
    password_wo = %q, password_wo_version = %d
  }
}`, pg.Port, db, role, pw, version)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg("first-pw", 1)},
			{
				PreConfig: func() {
					if err := pg.Exec(context.Background(), "postgres", fmt.Sprintf(`ALTER ROLE %q PASSWORD 'second-pw'`, role)); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg("second-pw", 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("migration_endpoint.pg", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_endpoint.pg", tfjsonpath.New("postgres").AtMapKey("password_wo_version"), knownvalue.Int64Exact(2)),
				},
			},
			// The old password in a new version is checked and refused.
			{
				Config:      cfg("first-pw", 3),
				ExpectError: regexp.MustCompile(`authentication\s+failed`),
			},
		},
	})
}

func TestAccEndpoint_dynamodb(t *testing.T) {
	d := sharedDynalite(t)
	awsTestCredentials(t)
	id := "dynamodb://eu-west-1?endpoint_url=" + urlQueryEscape(d.Endpoint)
	cfg := fmt.Sprintf(`
resource "migration_endpoint" "ddb" {
  dynamodb = { region = "eu-west-1", endpoint_url = %q }
}`, d.Endpoint)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_endpoint.ddb", tfjsonpath.New("id"), knownvalue.StringExact(id)),
					statecheck.ExpectKnownValue("migration_endpoint.ddb", tfjsonpath.New("logical_replication"), knownvalue.Null()),
				},
			},
			{Config: cfg, PlanOnly: true},
			{
				ResourceName: "migration_endpoint.ddb", ImportState: true, ImportStateId: id,
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "id",
			},
		},
	})
}

func TestAccEndpoint_s3(t *testing.T) {
	s := sharedS3(t)
	awsTestCredentials(t)
	if err := s.CreateBucket(context.Background(), "acc-endpoint"); err != nil {
		t.Fatal(err)
	}
	id := "s3://acc-endpoint/shop/?compression=gzip&endpoint_url=" + urlQueryEscape(s.Endpoint) + "&force_path_style=true&format=jsonl&region=us-east-1"
	cfg := fmt.Sprintf(`
resource "migration_endpoint" "s3" {
  s3 = {
    url              = "s3://acc-endpoint/shop/"
    region           = "us-east-1"
    endpoint_url     = %q
    force_path_style = true
    compression      = "gzip"
  }
}`, s.Endpoint)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_endpoint.s3", tfjsonpath.New("id"), knownvalue.StringExact(id)),
					statecheck.ExpectKnownValue("migration_endpoint.s3", tfjsonpath.New("s3").AtMapKey("format"), knownvalue.StringExact("jsonl")),
				},
			},
			{Config: cfg, PlanOnly: true},
			{
				ResourceName: "migration_endpoint.s3", ImportState: true, ImportStateId: id,
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "id",
			},
		},
	})
}

func TestAccEndpoint_file(t *testing.T) {
	skipUnlessAcc(t)
	dir := t.TempDir()
	id := "file://" + dir + "/?compression=zstd&format=csv"
	cfg := fmt.Sprintf(`
resource "migration_endpoint" "local" {
  s3 = { url = "file://%s/", format = "csv", compression = "zstd" }
}`, dir)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("migration_endpoint.local", tfjsonpath.New("id"), knownvalue.StringExact(id)),
				},
			},
			{
				ResourceName: "migration_endpoint.local", ImportState: true, ImportStateId: id,
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "id",
			},
			// The directory vanished: refresh drops the endpoint and the plan re-creates it.
			{
				PreConfig: func() {
					if err := os.RemoveAll(dir); err != nil {
						t.Fatal(err)
					}
				},
				Config:             cfg,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			// Creating it fails, saying the directory does not exist.
			{
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)does not exist`),
			},
			{
				PreConfig: func() {
					if err := os.MkdirAll(filepath.Clean(dir), 0o755); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
			},
		},
	})
}

// Bad input is an attribute error at plan time, before anything connects.
func TestAccEndpoint_badInput(t *testing.T) {
	skipUnlessAcc(t)
	pgBlock := func(extra string) string {
		return fmt.Sprintf(`
resource "migration_endpoint" "bad" {
  postgres = {
    host = "127.0.0.1", database = "x", username = "u", password_wo = "p"
    %s
  }
}`, extra)
	}
	s3Block := func(attrs string) string {
		return fmt.Sprintf(`
resource "migration_endpoint" "bad" {
  s3 = { %s }
}`, attrs)
	}
	cases := []struct {
		name, config string
		want         string
	}{
		{"no engine", `resource "migration_endpoint" "bad" {}`, `(?s)Missing Attribute Configuration.*Exactly one of these attributes must be\s+configured: \[postgres,dynamodb,s3\]`},
		{"two engines", `
resource "migration_endpoint" "bad" {
  dynamodb = { region = "eu-west-1" }
  s3       = { url = "s3://bucket/x/" }
}`, `(?s)Invalid Attribute Combination.*Exactly one of these attributes must be\s+configured: \[postgres,dynamodb,s3\]`},
		{"port out of range", pgBlock("port = 70000"), `(?s)postgres\.port.*between 1 and 65535`},
		{"port zero", pgBlock("port = 0"), `(?s)postgres\.port.*between 1 and 65535`},
		{"unknown sslmode", pgBlock(`sslmode = "prefer-ish"`), `(?s)postgres\.sslmode.*value must be one of.*"verify-full"`},
		{"unknown format", s3Block(`url = "s3://bucket/x/", format = "xml"`), `(?s)s3\.format.*value must be one of.*"parquet"`},
		{"unknown compression", s3Block(`url = "s3://bucket/x/", compression = "lz4"`), `(?s)s3\.compression.*value must be one of.*"zstd"`},
		{"url scheme", s3Block(`url = "http://bucket/x/"`), `(?s)s3\.url.*s3://`},
		{"url bucket", s3Block(`url = "s3://Bad_Bucket/x/"`), `(?s)s3\.url.*bucket`},
		{"relative file url", s3Block(`url = "file://relative/dir/"`), `(?s)s3\.url.*file:///`},
		{"role arn", `
resource "migration_endpoint" "bad" {
  dynamodb = { region = "eu-west-1", role_arn = "migrator" }
}`, `(?s)dynamodb\.role_arn.*IAM role ARN`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   requireWriteOnly,
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}

// Apply-time errors say what to do, on the attribute concerned, and never echo the password.
func TestAccEndpoint_connectErrors(t *testing.T) {
	pg := sharedPostgres(t)
	db, role := newDatabase(t, pg, "acc_errors", "right-pw")
	port := closedPort(t)
	cases := []struct {
		name, config, want string
	}{
		{"unreachable", postgresEndpointConfig("127.0.0.1", port, db, role, "right-pw", ""),
			fmt.Sprintf(`(?s)Attribute postgres\.host: Nothing answered at\s+127\.0\.0\.1:%d.*server\s+is\s+running`, port)},
		{"wrong password", postgresEndpointConfig("127.0.0.1", pg.Port, db, role, "wrong-pw-xyz", ""),
			`(?s)Attribute postgres\.password_wo:.*authentication\s+failed.*password_wo_version`},
		{"missing database", postgresEndpointConfig("127.0.0.1", pg.Port, "no_such_db", role, "right-pw", ""),
			`(?s)Attribute postgres\.database:.*does\s+not\s+exist.*Create\s+the\s+database`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   requireWriteOnly,
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}
