// Package dynamodb is the DynamoDB connector: it builds an SDK client from an
// endpoint's settings through the standard AWS credential chain, probes the
// endpoint (classifying failures into *engine.ConnectError) and reads its
// catalog — tables, key schema, item counts and sizes.
package dynamodb
