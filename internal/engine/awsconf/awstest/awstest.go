// Package awstest keeps the tests of AWS connectors off the machine's AWS
// configuration: credentials, profiles, regions and endpoints come from the
// test alone.
package awstest

import (
	"net"
	"path/filepath"
	"testing"
)

// Isolate gives the test a credential chain of its own: no shared files from
// the machine, no region, endpoint or role from the environment, and no
// instance-metadata lookups. withKeys puts static keys ("test") in the
// environment, so the standard chain is what resolves them; without, the
// chain finds no credentials.
func Isolate(t testing.TB, withKeys bool) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_REGION":                             "",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_ROLE_ARN":                           "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_DYNAMODB":              "",
		"AWS_ENDPOINT_URL_S3":                    "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
	} {
		t.Setenv(k, v)
	}
	if withKeys {
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	}
}

// ClosedEndpoint returns an http endpoint on which nothing listens.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}
