// Package testenv starts throwaway real servers for tests, the demo and the
// benchmark: a PostgreSQL 15 cluster (its own data dir, port and process), a
// DynamoDB-compatible dynalite (Node.js, installed from npm on first use) and
// an in-process S3 (gofakes3 with its in-memory backend). Each server belongs
// to the caller that started it and is gone after Stop; nothing outlives the
// process that started it.
//
// Core functions take a context and return errors so that non-test programs
// can use them; the *T variants fail the test and register cleanup.
//
// Environment:
//
//	PGBIN                 directory holding initdb and postgres
//	                      (default: the output of `pg_config --bindir`)
//	MIGRATION_TEST_CACHE  where dynalite is installed with npm
//	                      (default: os.UserCacheDir()/terraform-provider-migration)
//
// When run as root, PostgreSQL (which refuses root) runs as the "nobody" user.
//
// This package never imports a terraform-plugin-* package.
package testenv
