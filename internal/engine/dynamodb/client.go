package dynamodb

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf"
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
// (awsconf.Load), optionally narrowed to Profile, optionally assuming
// RoleARN, and pointed at EndpointURL when set. It sends no request.
func NewClient(ctx context.Context, cfg Config) (*ddb.Client, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("%s: region is required", cfg.Target())
	}
	awsCfg, err := awsconf.Load(ctx, cfg.Target(), awsconf.Settings{Region: cfg.Region, Profile: cfg.Profile, RoleARN: cfg.RoleARN})
	if err != nil {
		return nil, err
	}
	return ddb.NewFromConfig(awsCfg, func(o *ddb.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
	}), nil
}
