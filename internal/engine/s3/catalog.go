package s3

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// sumConcurrency bounds parallel recursive listings, one per prefix.
const sumConcurrency = 4

// ReadCatalog lists the prefixes directly below the url — one per table
// written there — each with its object count and total bytes, counted
// recursively. Prefix names are relative to the url and end in "/"
// ("customers/"); objects directly at the url's level are reported under
// Prefix "" when there are any. Zero-byte keys ending in "/" are folder
// markers made by consoles and are not counted.
func (s *Store) ReadCatalog(ctx context.Context) (*catalog.Catalog, error) {
	var (
		prefixes []catalog.Prefix
		err      error
	)
	if s.loc.Scheme == "file" {
		prefixes, err = s.readDir(ctx)
	} else {
		prefixes, err = s.readBucket(ctx)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(prefixes, func(i, j int) bool { return prefixes[i].Prefix < prefixes[j].Prefix })
	return &catalog.Catalog{Engine: "s3", Prefixes: prefixes}, nil
}

func (s *Store) readBucket(ctx context.Context) ([]catalog.Prefix, error) {
	top := catalog.Prefix{}
	var subs []string
	seen := map[string]bool{}
	pages := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket:    aws.String(s.loc.Bucket),
		Prefix:    aws.String(s.loc.Prefix),
		Delimiter: aws.String("/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", s.loc, s.knownOrWrapped(err, "s3:ListBucket"))
		}
		for _, cp := range page.CommonPrefixes {
			// Some S3-compatible servers repeat a common prefix on the
			// next page when a page ends inside it.
			if p := aws.ToString(cp.Prefix); !seen[p] {
				seen[p] = true
				subs = append(subs, p)
			}
		}
		for _, o := range page.Contents {
			if isFolderMarker(aws.ToString(o.Key), aws.ToInt64(o.Size)) {
				continue
			}
			top.Objects++
			top.Bytes += aws.ToInt64(o.Size)
		}
	}

	return sumEach(ctx, top, subs, s.sumObjects)
}

// sumObjects counts the objects below the bucket's prefix sub, recursively.
func (s *Store) sumObjects(ctx context.Context, sub string) (catalog.Prefix, error) {
	p := catalog.Prefix{Prefix: strings.TrimPrefix(sub, s.loc.Prefix)}
	pages := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.loc.Bucket),
		Prefix: aws.String(sub),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return catalog.Prefix{}, fmt.Errorf("listing s3://%s/%s: %w", s.loc.Bucket, sub, s.knownOrWrapped(err, "s3:ListBucket"))
		}
		for _, o := range page.Contents {
			if isFolderMarker(aws.ToString(o.Key), aws.ToInt64(o.Size)) {
				continue
			}
			p.Objects++
			p.Bytes += aws.ToInt64(o.Size)
		}
	}
	return p, nil
}

func isFolderMarker(key string, size int64) bool {
	return size == 0 && strings.HasSuffix(key, "/")
}

func (s *Store) readDir(ctx context.Context) ([]catalog.Prefix, error) {
	dir := s.loc.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, s.fileErr(err, dir))
	}
	top := catalog.Prefix{}
	var subs []string
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		isDir, isFile := e.IsDir(), e.Type().IsRegular()
		if e.Type()&fs.ModeSymlink != 0 {
			// Follow a symlink only at this level: a table's directory may
			// live on another volume, but a walk must not loop.
			fi, err := os.Stat(full)
			if err != nil {
				continue // dangling link: nothing to read there
			}
			isDir, isFile = fi.IsDir(), fi.Mode().IsRegular()
		}
		switch {
		case isDir:
			subs = append(subs, e.Name())
		case isFile:
			info, err := os.Stat(full)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", full, err)
			}
			top.Objects++
			top.Bytes += info.Size()
		}
	}

	return sumEach(ctx, top, subs, func(ctx context.Context, sub string) (catalog.Prefix, error) {
		return sumFiles(ctx, dir, sub)
	})
}

// sumFiles counts the regular files below dir's subdirectory sub, recursively.
func sumFiles(ctx context.Context, dir, sub string) (catalog.Prefix, error) {
	p := catalog.Prefix{Prefix: sub + "/"}
	// The trailing separator makes WalkDir enter a symlinked directory.
	root := filepath.Join(dir, sub) + string(filepath.Separator)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		p.Objects++
		p.Bytes += info.Size()
		return nil
	})
	if err != nil {
		return catalog.Prefix{}, fmt.Errorf("reading %s: %w", root, err)
	}
	return p, nil
}

// sumEach sums every sub-prefix, sumConcurrency at a time, stopping at the
// first error, and puts top first when objects lie directly at its level.
func sumEach(ctx context.Context, top catalog.Prefix, subs []string, sum func(context.Context, string) (catalog.Prefix, error)) ([]catalog.Prefix, error) {
	out := make([]catalog.Prefix, len(subs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sumConcurrency)
	for i, sub := range subs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // a sum failed or ctx ended: start no more
			}
			p, err := sum(gctx, sub)
			out[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if top.Objects > 0 {
		// "" sorts first.
		out = append([]catalog.Prefix{top}, out...)
	}
	return out, nil
}
