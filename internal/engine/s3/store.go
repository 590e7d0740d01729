package s3

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf"
)

// Formats are the object formats a store reads and writes; the first is the default.
var Formats = []string{"jsonl", "csv", "parquet"}

// Compressions are the object compressions; the first is the default.
var Compressions = []string{"none", "gzip", "zstd"}

// Config is an object-storage endpoint's settings. It holds no secret:
// credentials come from the standard AWS chain.
type Config struct {
	URL            string // "s3://bucket/prefix/" or "file:///abs/dir/"
	Region         string
	EndpointURL    string
	ForcePathStyle bool
	Format         string // default "jsonl"
	Compression    string // default "none"
}

// Store is an opened object store: an S3 bucket+prefix or a local directory.
type Store struct {
	cfg       Config
	loc       Location
	client    *awss3.Client   // nil for file://
	transport *http.Transport // the client's, so Close can release its connections
}

// Open validates cfg and prepares the store. For s3 it builds a client from
// the standard AWS credential chain (awsconf.Load) with cfg's region,
// endpoint and addressing style; it sends no request (Probe does).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	loc, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Format == "" {
		cfg.Format = Formats[0]
	}
	if cfg.Compression == "" {
		cfg.Compression = Compressions[0]
	}
	if !slices.Contains(Formats, cfg.Format) {
		return nil, fmt.Errorf("%s: format %q is not supported; use one of %q", loc, cfg.Format, Formats)
	}
	if !slices.Contains(Compressions, cfg.Compression) {
		return nil, fmt.Errorf("%s: compression %q is not supported; use one of %q", loc, cfg.Compression, Compressions)
	}
	s := &Store{cfg: cfg, loc: loc}
	if loc.Scheme == "file" {
		return s, nil
	}

	awsCfg, err := awsconf.Load(ctx, loc.String(), awsconf.Settings{Region: cfg.Region})
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		if cfg.EndpointURL == "" {
			return nil, fmt.Errorf("%s: no region: set region (or AWS_REGION) to the bucket's region", loc)
		}
		// S3-compatible servers mostly ignore the region, but SigV4 needs one.
		awsCfg.Region = "us-east-1"
	}
	s.cfg.Region = awsCfg.Region
	awsCfg.HTTPClient, s.transport = newHTTPClient(awsCfg.HTTPClient)
	s.client = awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
		o.UsePathStyle = cfg.ForcePathStyle
	})
	return s, nil
}

// Target names the store for messages: the url, plus endpoint and region
// for s3. It never contains a secret.
func (s *Store) Target() string {
	switch {
	case s.loc.Scheme == "file":
		return s.loc.String()
	case s.cfg.EndpointURL != "":
		return fmt.Sprintf("%s at %s (%s)", s.loc, s.cfg.EndpointURL, s.cfg.Region)
	default:
		return fmt.Sprintf("%s (%s)", s.loc, s.cfg.Region)
	}
}

// Close releases the store's idle connections. A Store is opened per
// operation in a long-lived plugin process, so its connections should not
// linger until the transport's idle timeout.
func (s *Store) Close() error {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return nil
}

// newHTTPClient builds the client the SDK would (its default transport,
// including a custom CA bundle from the chain, and only 307/308 redirects
// followed) but keeps the transport where Close can reach it: the SDK's own
// client hides it.
func newHTTPClient(base aws.HTTPClient) (*http.Client, *http.Transport) {
	bc, ok := base.(*awshttp.BuildableClient)
	if !ok {
		bc = awshttp.NewBuildableClient()
	}
	tr := bc.GetTransport()
	return &http.Client{
		Transport: tr,
		Timeout:   bc.GetTimeout(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// 301 and 302 would turn the request into a GET; S3 answers
			// them for a wrong region, which the SDK reports as an error.
			if c := req.Response.StatusCode; (c == http.StatusTemporaryRedirect || c == http.StatusPermanentRedirect) && len(via) < 10 {
				return nil
			}
			return http.ErrUseLastResponse
		},
	}, tr
}

// Location is the store's parsed url.
func (s *Store) Location() Location { return s.loc }
