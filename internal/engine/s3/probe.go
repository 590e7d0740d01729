package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

// ProbeObjectLimit bounds Probe's object count: a plan must not page through
// a bucket of millions of objects just to show a number.
const ProbeObjectLimit = 10000

// Facts is what Probe learned about a usable store.
type Facts struct {
	Kind    string // "s3" | "file"
	Objects int64  // below the url, recursively; a lower bound when Truncated
	// Truncated: counting stopped after about ProbeObjectLimit objects and there are more.
	Truncated bool
}

// Probe checks that the store can be used: for s3 that the bucket exists and
// the credentials are accepted; for file:// that the directory exists and is
// writable. Failures are *engine.ConnectError.
func (s *Store) Probe(ctx context.Context) (Facts, error) {
	if s.loc.Scheme == "file" {
		return s.probeDir(ctx)
	}
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(s.loc.Bucket)}); err != nil {
		ce := s.classify(err, "s3:ListBucket")
		if ce.Kind == engine.ConnectPermission {
			// HEAD responses have no body, so a bad key and a missing grant
			// both read as 403; a listing's error body tells them apart.
			_, lerr := s.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(s.loc.Bucket), MaxKeys: aws.Int32(1)})
			var apiErr smithy.APIError
			if errors.As(lerr, &apiErr) && authCodes[apiErr.ErrorCode()] {
				ce = s.classify(lerr, "s3:ListBucket")
			}
		}
		return Facts{}, ce
	}
	facts := Facts{Kind: "s3"}
	pages := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.loc.Bucket),
		Prefix: aws.String(s.loc.Prefix),
	})
	for pages.HasMorePages() {
		if facts.Objects >= ProbeObjectLimit {
			facts.Truncated = true
			break
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return Facts{}, s.classify(err, "s3:ListBucket")
		}
		for _, o := range page.Contents {
			if !isFolderMarker(aws.ToString(o.Key), aws.ToInt64(o.Size)) {
				facts.Objects++
			}
		}
	}
	return facts, nil
}

func (s *Store) probeDir(ctx context.Context) (Facts, error) {
	dir := s.loc.Dir
	fi, err := os.Stat(dir)
	if err != nil {
		return Facts{}, s.fileErr(err, dir)
	}
	if !fi.IsDir() {
		return Facts{}, &engine.ConnectError{
			Kind: engine.ConnectOther, Target: s.Target(),
			Err:  fmt.Errorf("%s is not a directory", dir),
			Hint: "point url at a directory",
		}
	}
	// Creating a file is the only reliable test of writability: mode bits
	// say nothing about read-only mounts, ACLs or root.
	f, err := os.CreateTemp(dir, ".migration-probe-*")
	if err != nil {
		ce := s.fileErr(err, dir)
		if ce.Kind == engine.ConnectOther {
			ce.Kind = engine.ConnectPermission
			ce.Hint = fmt.Sprintf("cannot create files in %s: make it writable by the user running terraform", dir)
		}
		return Facts{}, ce
	}
	name := f.Name()
	cerr := f.Close()
	if err := errors.Join(cerr, os.Remove(name)); err != nil {
		return Facts{}, fmt.Errorf("removing probe file %s: %w", name, err)
	}

	facts := Facts{Kind: "file"}
	errLimit := errors.New("limit reached")
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if facts.Objects >= ProbeObjectLimit {
				facts.Truncated = true
				return errLimit
			}
			facts.Objects++
		}
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		return Facts{}, fmt.Errorf("counting files below %s: %w", dir, s.fileErr(err, dir))
	}
	return facts, nil
}
