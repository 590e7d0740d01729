package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const catalogSchemaSQL = `
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL,
  country char(2) DEFAULT 'US',
  tags text[]);
CREATE TABLE shop.orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.customers (id),
  amount numeric(12,2) NOT NULL,
  amount_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED);
CREATE TABLE shop.events (
  id bigint NOT NULL, created_at timestamptz NOT NULL, payload jsonb,
  PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE shop.audit_log (at timestamptz, line text);
INSERT INTO shop.customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 100) g;
INSERT INTO shop.orders SELECT g, 1 + g % 100, g / 10.0 FROM generate_series(1, 1000) g;
INSERT INTO shop.audit_log SELECT now(), 'x' FROM generate_series(1, 10);
ANALYZE;
CREATE SCHEMA other;
CREATE TABLE other.ignored (id int PRIMARY KEY);
`

func TestAccCatalog_postgres(t *testing.T) {
	pg := sharedPostgres(t)
	db, role := newDatabase(t, pg, "acc_catalog", "catalog-pw")
	if err := pg.Exec(context.Background(), db, catalogSchemaSQL); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(context.Background(), db, fmt.Sprintf(`GRANT USAGE ON SCHEMA shop, other TO %q; GRANT SELECT ON ALL TABLES IN SCHEMA shop, other TO %q`, role, role)); err != nil {
		t.Fatal(err)
	}
	cfg := postgresEndpointConfig("127.0.0.1", pg.Port, db, role, "catalog-pw", "") + `
data "migration_catalog" "shop" {
  endpoint_id = migration_endpoint.pg.id
  schemas     = ["shop"]
}
data "migration_catalog" "all" {
  endpoint_id = migration_endpoint.pg.id
}
`
	ds := "data.migration_catalog.shop"
	table := func(i int) tfjsonpath.Path { return tfjsonpath.New("tables").AtSliceIndex(i) }
	str := knownvalue.StringExact
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   requireWriteOnly,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("engine"), str("postgres")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("table_count"), knownvalue.Int64Exact(6)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("tables_without_primary_key"), knownvalue.ListExact([]knownvalue.Check{str("shop.audit_log")})),
					// Sorted by name: audit_log, customers, events, events_2024, events_2025, orders.
					statecheck.ExpectKnownValue(ds, table(0).AtMapKey("qualified_name"), str("shop.audit_log")),
					statecheck.ExpectKnownValue(ds, table(0).AtMapKey("primary_key"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(ds, table(0).AtMapKey("estimated_rows"), knownvalue.Int64Exact(10)),
					statecheck.ExpectKnownValue(ds, table(1).AtMapKey("qualified_name"), str("shop.customers")),
					statecheck.ExpectKnownValue(ds, table(1).AtMapKey("estimated_rows"), knownvalue.Int64Exact(100)),
					statecheck.ExpectKnownValue(ds, table(1).AtMapKey("columns"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{"name": str("id"), "type": str("bigint"), "nullable": knownvalue.Bool(false),
							"default": knownvalue.Null(), "generated": knownvalue.Null(), "identity": str("always")}),
						knownvalue.ObjectExact(map[string]knownvalue.Check{"name": str("email"), "type": str("text"), "nullable": knownvalue.Bool(false),
							"default": knownvalue.Null(), "generated": knownvalue.Null(), "identity": knownvalue.Null()}),
						knownvalue.ObjectExact(map[string]knownvalue.Check{"name": str("country"), "type": str("character(2)"), "nullable": knownvalue.Bool(true),
							"default": str("'US'::bpchar"), "generated": knownvalue.Null(), "identity": knownvalue.Null()}),
						knownvalue.ObjectExact(map[string]knownvalue.Check{"name": str("tags"), "type": str("text[]"), "nullable": knownvalue.Bool(true),
							"default": knownvalue.Null(), "generated": knownvalue.Null(), "identity": knownvalue.Null()}),
					})),
					statecheck.ExpectKnownValue(ds, table(2).AtMapKey("qualified_name"), str("shop.events")),
					statecheck.ExpectKnownValue(ds, table(2).AtMapKey("kind"), str("partitioned")),
					statecheck.ExpectKnownValue(ds, table(2).AtMapKey("partition_key"), str("RANGE (created_at)")),
					statecheck.ExpectKnownValue(ds, table(2).AtMapKey("primary_key"), knownvalue.ListExact([]knownvalue.Check{str("id"), str("created_at")})),
					statecheck.ExpectKnownValue(ds, table(2).AtMapKey("partitions"), knownvalue.ListExact([]knownvalue.Check{str("shop.events_2024"), str("shop.events_2025")})),
					statecheck.ExpectKnownValue(ds, table(3).AtMapKey("partition_of"), str("shop.events")),
					statecheck.ExpectKnownValue(ds, table(5).AtMapKey("qualified_name"), str("shop.orders")),
					statecheck.ExpectKnownValue(ds, table(5).AtMapKey("foreign_keys"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{
							"name": str("orders_customer_id_fkey"), "columns": knownvalue.ListExact([]knownvalue.Check{str("customer_id")}),
							"referenced_table": str("shop.customers"), "referenced_columns": knownvalue.ListExact([]knownvalue.Check{str("id")}),
						}),
					})),
					statecheck.ExpectKnownValue(ds, table(5).AtMapKey("columns").AtSliceIndex(2).AtMapKey("type"), str("numeric(12,2)")),
					statecheck.ExpectKnownValue(ds, table(5).AtMapKey("columns").AtSliceIndex(3).AtMapKey("generated"), str("((amount * (100)::numeric))::bigint")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("estimated_rows"), knownvalue.Int64Exact(1110)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("logical_replication").AtMapKey("ready"), knownvalue.Bool(false)),
					// Without a filter the other schema is read too.
					statecheck.ExpectKnownValue("data.migration_catalog.all", tfjsonpath.New("table_count"), knownvalue.Int64Exact(7)),
				},
			},
			{Config: cfg, PlanOnly: true},
		},
	})
}

func TestAccCatalog_badEndpointID(t *testing.T) {
	skipUnlessAcc(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      `data "migration_catalog" "x" { endpoint_id = "mysql://db/x" }`,
			ExpectError: regexp.MustCompile(`(?s)Invalid Endpoint ID.*unknown scheme "mysql"`),
		}},
	})
}

func TestAccCatalog_dynamodb(t *testing.T) {
	d := sharedDynalite(t)
	awsTestCredentials(t)
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
	for _, tbl := range []*dynamodb.CreateTableInput{
		{
			TableName:            aws.String("acc_orders"),
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("customer_id"), AttributeType: ddbtypes.ScalarAttributeTypeS}, {AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeN}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("customer_id"), KeyType: ddbtypes.KeyTypeHash}, {AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeRange}},
			BillingMode:          ddbtypes.BillingModePayPerRequest,
		},
		{
			TableName:            aws.String("acc_sessions"),
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("token"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("token"), KeyType: ddbtypes.KeyTypeHash}},
			BillingMode:          ddbtypes.BillingModePayPerRequest,
		},
	} {
		if _, err := client.CreateTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`
resource "migration_endpoint" "ddb" {
  dynamodb = { region = "eu-west-1", endpoint_url = %q }
}
data "migration_catalog" "ddb" {
  endpoint_id = migration_endpoint.ddb.id
}
locals {
  acc = [for t in data.migration_catalog.ddb.tables : t if startswith(t.name, "acc_")]
}
output "acc_tables" { value = local.acc }
`, d.Endpoint)
	str := knownvalue.StringExact
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.migration_catalog.ddb", tfjsonpath.New("engine"), str("dynamodb")),
				statecheck.ExpectKnownOutputValueAtPath("acc_tables", tfjsonpath.New(0).AtMapKey("name"), str("acc_orders")),
				statecheck.ExpectKnownOutputValueAtPath("acc_tables", tfjsonpath.New(0).AtMapKey("primary_key"), knownvalue.ListExact([]knownvalue.Check{str("customer_id"), str("id")})),
				statecheck.ExpectKnownOutputValueAtPath("acc_tables", tfjsonpath.New(0).AtMapKey("columns").AtSliceIndex(1).AtMapKey("type"), str("N")),
				statecheck.ExpectKnownOutputValueAtPath("acc_tables", tfjsonpath.New(1).AtMapKey("name"), str("acc_sessions")),
				statecheck.ExpectKnownOutputValueAtPath("acc_tables", tfjsonpath.New(1).AtMapKey("primary_key"), knownvalue.ListExact([]knownvalue.Check{str("token")})),
			},
		}},
	})
}

func TestAccCatalog_s3AndFile(t *testing.T) {
	s := sharedS3(t)
	awsTestCredentials(t)
	ctx := context.Background()
	if err := s.CreateBucket(ctx, "acc-catalog"); err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string]string{
		"shop/customers/part-0001.jsonl": "{}\n{}\n",
		"shop/orders/part-0001.jsonl":    "{}\n",
		"shop/orders/part-0002.jsonl":    "{}\n{}\n{}\n",
		"elsewhere/x.jsonl":              "{}\n",
	} {
		if err := s.PutObject(ctx, "acc-catalog", key, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"customers/a.csv", "orders/a.csv", "orders/b.csv"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("id\n1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`
resource "migration_endpoint" "s3" {
  s3 = { url = "s3://acc-catalog/shop/", region = "us-east-1", endpoint_url = %q, force_path_style = true }
}
resource "migration_endpoint" "local" {
  s3 = { url = "file://%s/", format = "csv" }
}
data "migration_catalog" "s3" { endpoint_id = migration_endpoint.s3.id }
data "migration_catalog" "local" { endpoint_id = migration_endpoint.local.id }
`, s.Endpoint, dir)
	prefix := func(p string, objects, bytes int64) knownvalue.Check {
		return knownvalue.ObjectExact(map[string]knownvalue.Check{
			"prefix": knownvalue.StringExact(p), "objects": knownvalue.Int64Exact(objects), "bytes": knownvalue.Int64Exact(bytes),
		})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.migration_catalog.s3", tfjsonpath.New("engine"), knownvalue.StringExact("s3")),
				statecheck.ExpectKnownValue("data.migration_catalog.s3", tfjsonpath.New("prefixes"), knownvalue.ListExact([]knownvalue.Check{
					prefix("customers/", 1, 6), prefix("orders/", 2, 12),
				})),
				statecheck.ExpectKnownValue("data.migration_catalog.local", tfjsonpath.New("prefixes"), knownvalue.ListExact([]knownvalue.Check{
					prefix("customers/", 1, 5), prefix("orders/", 2, 10),
				})),
				statecheck.ExpectKnownValue("data.migration_catalog.local", tfjsonpath.New("total_bytes"), knownvalue.Int64Exact(15)),
			},
		}},
	})
}
