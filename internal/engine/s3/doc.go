// Package s3 is the object-storage connector: an S3 bucket and prefix
// (through aws-sdk-go-v2 and the standard AWS credential chain, or any
// S3-compatible server) or a local directory behind a file:// url. It owns
// url parsing, the accepted formats and compressions, probing the store
// (classifying failures into *engine.ConnectError) and reading its catalog:
// one prefix per table, with object counts and sizes.
package s3
