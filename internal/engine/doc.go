// Package engine is the migration engine: plain Go, usable and testable
// without Terraform. It owns the connector boundary (a source yields batches
// of rows, a target applies them and commits a checkpoint) and the error
// types callers branch on. Sub-packages follow a row's path:
//
//	catalog   what is there (tables, columns, keys, sizes)
//	postgres  PostgreSQL connector (pgx/v5): connection, probe, catalog reader
//	dynamodb  DynamoDB connector (aws-sdk-go-v2)
//	s3        S3 and file:// connector (aws-sdk-go-v2)
//	endpoint  an endpoint's connection spec and its stable, secret-free id
//	testenv   throwaway servers for tests, the demo and the benchmark
//
// This package and its children never import a terraform-plugin-* package.
package engine
