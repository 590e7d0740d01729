package dynamodb

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

// Config is a DynamoDB endpoint's connection settings. It holds no secret:
// credentials come from the standard AWS chain.
type Config struct {
	Region      string // required
	EndpointURL string // optional, for local/compatible servers (dynalite, DynamoDB Local)
	Profile     string // optional shared-config profile
	RoleARN     string // optional: assume this role (stscreds) on top of the chain
}

// Target names the endpoint for messages; it never contains a secret.
func (c Config) Target() string {
	if c.EndpointURL != "" {
		return fmt.Sprintf("dynamodb at %s (%s)", c.EndpointURL, c.Region)
	}
	return "dynamodb " + c.Region
}

// NewClient builds a DynamoDB client from the standard AWS credential chain
// (environment, shared config and credentials files, SSO, web identity,
// container and instance roles), optionally narrowed to Profile, optionally
// assuming RoleARN, and pointed at EndpointURL when set. It sends no request.
func NewClient(ctx context.Context, cfg Config) (*ddb.Client, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("%s: region is required", cfg.Target())
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var missing config.SharedConfigProfileNotExistError
		if errors.As(err, &missing) {
			return nil, &engine.ConnectError{
				Kind:   engine.ConnectAuthFailed,
				Target: cfg.Target(),
				Hint:   fmt.Sprintf("profile %q is not in the shared AWS config or credentials file: fix profile or define it", cfg.Profile),
				Err:    err,
			}
		}
		return nil, fmt.Errorf("loading AWS configuration for %s: %w", cfg.Target(), err)
	}
	if cfg.RoleARN != "" {
		// STS stays on AWS even when EndpointURL points DynamoDB elsewhere:
		// the role is an AWS identity, not a property of the data endpoint.
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN))
	}
	// Tag credential failures so Probe can tell "no usable credentials"
	// apart from a server rejecting the request; the SDK wraps them untyped.
	// The chain's provider is already cached; the wrapper only tags errors.
	awsCfg.Credentials = credentialsProvider{awsCfg.Credentials}
	return ddb.NewFromConfig(awsCfg, func(o *ddb.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
	}), nil
}

// credentialsProvider wraps the chain so its errors carry credentialsError.
type credentialsProvider struct{ p aws.CredentialsProvider }

func (c credentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if c.p == nil {
		return aws.Credentials{}, &credentialsError{errors.New("no credentials provider configured")}
	}
	v, err := c.p.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, &credentialsError{err}
	}
	return v, nil
}

// IsCredentialsProvider lets the SDK see through the wrapper (it checks for
// anonymous credentials to skip signing).
func (c credentialsProvider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(c.p, target)
}

// ProviderSources passes on where the credentials came from, which the SDK
// reports in its user agent.
func (c credentialsProvider) ProviderSources() []aws.CredentialSource {
	if s, ok := c.p.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

// credentialsError is a failure to obtain credentials from the chain (none
// found, expired SSO session, role that cannot be assumed).
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "resolving AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }
