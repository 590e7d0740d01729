package awsconf

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

// Settings narrow the standard AWS chain; each may be left empty.
type Settings struct {
	Region  string // empty: the chain's (AWS_REGION, the profile's region)
	Profile string // a shared-config profile instead of the default one
	RoleARN string // a role to assume (stscreds) on top of the chain
}

// Load builds the configuration for target (named in errors) from the
// standard AWS credential chain (environment, shared config and credentials
// files, SSO, web identity, container and instance roles), optionally
// narrowed to Profile and assuming RoleARN. Credential failures later carry
// a type Classify recognizes. It sends no request.
//
// The endpoint URL is left to the service client: STS stays on AWS even when
// the data endpoint is elsewhere, as the role is an AWS identity, not a
// property of the data endpoint.
func Load(ctx context.Context, target string, s Settings) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var missing config.SharedConfigProfileNotExistError
		if s.Profile != "" && errors.As(err, &missing) {
			return aws.Config{}, &engine.ConnectError{
				Kind:   engine.ConnectAuthFailed,
				Target: target,
				Hint:   fmt.Sprintf("profile %q is not in the shared AWS config or credentials file: fix profile or define it", s.Profile),
				Err:    err,
			}
		}
		return aws.Config{}, fmt.Errorf("loading AWS configuration for %s: %w", target, err)
	}
	if s.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), s.RoleARN))
	}
	// Tag credential failures so Classify can tell "no usable credentials"
	// apart from a server rejecting the request; the SDK wraps them untyped.
	// The chain's provider is already cached; the wrapper only tags errors.
	cfg.Credentials = credentialsProvider{cfg.Credentials}
	return cfg, nil
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
