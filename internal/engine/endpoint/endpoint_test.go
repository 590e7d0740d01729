package endpoint

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/dynamodb"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

func TestIDRoundTrip(t *testing.T) {
	cases := []struct {
		spec Spec
		id   string
	}{
		{Spec{Postgres: &postgres.Config{Host: "db.internal", Port: 5432, Database: "shop", Username: "migrator", SSLMode: "verify-full", SSLRootCert: "/etc/ca.pem", ConnectTimeout: 10 * time.Second}},
			"postgres://migrator@db.internal:5432/shop?connect_timeout=10&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"},
		{Spec{Postgres: &postgres.Config{Host: "::1", Port: 6432, Database: "a b", Username: "user@corp", SSLMode: "disable", ConnectTimeout: 5 * time.Second}},
			"postgres://user%40corp@[::1]:6432/a%20b?connect_timeout=5&sslmode=disable"},
		{Spec{DynamoDB: &dynamodb.Config{Region: "eu-west-1"}}, "dynamodb://eu-west-1"},
		{Spec{DynamoDB: &dynamodb.Config{Region: "us-east-1", EndpointURL: "http://127.0.0.1:8000", Profile: "dev", RoleARN: "arn:aws:iam::123456789012:role/m"}},
			"dynamodb://us-east-1?endpoint_url=http%3A%2F%2F127.0.0.1%3A8000&profile=dev&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fm"},
		{Spec{S3: &s3.Config{URL: "s3://archive/shop/", Region: "eu-west-1", Format: "jsonl", Compression: "gzip"}},
			"s3://archive/shop/?compression=gzip&format=jsonl&region=eu-west-1"},
		{Spec{S3: &s3.Config{URL: "file:///var/lib/archive/", Format: "csv", Compression: "none", ForcePathStyle: true}},
			"file:///var/lib/archive/?compression=none&force_path_style=true&format=csv"},
	}
	for _, tc := range cases {
		if got := tc.spec.ID(); got != tc.id {
			t.Errorf("ID() = %q, want %q", got, tc.id)
		}
		back, err := ParseID(tc.id)
		if err != nil {
			t.Errorf("ParseID(%q): %v", tc.id, err)
			continue
		}
		if !reflect.DeepEqual(back, tc.spec) {
			t.Errorf("ParseID(%q) = %+v, want %+v", tc.id, back, tc.spec)
		}
	}
}

func TestIDNeverHoldsPassword(t *testing.T) {
	s := Spec{Postgres: &postgres.Config{Host: "h", Port: 5432, Database: "d", Username: "u", Password: "hunter2-secret"}}
	if id := s.ID(); strings.Contains(id, "hunter2") {
		t.Fatalf("id %q holds the password", id)
	}
}

func TestParseIDErrors(t *testing.T) {
	for id, want := range map[string]string{
		"mysql://db/x":                     `unknown scheme "mysql"`,
		"postgres://db.internal:5432/shop": "names no user",
		"postgres://u:pw@db:5432/shop":     "must not contain a password",
		"postgres://u@db:99999/shop":       "invalid port",
		"postgres://u@db:5432/":            "needs a host and a database",
		"dynamodb://":                      "names no region",
		"s3://Bad_Bucket/x/?format=jsonl":  "bucket",
	} {
		_, err := ParseID(id)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseID(%q) = %v, want an error containing %q", id, err, want)
		}
	}
}
