package endpoint

import (
	"context"
	"fmt"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/dynamodb"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

// Facts is what a connectivity check learned about an endpoint.
type Facts struct {
	// ServerVersion is PostgreSQL's version; empty for the other engines.
	ServerVersion string
	// Postgres holds the logical-replication readiness of a PostgreSQL endpoint.
	Postgres *postgres.Facts
	// DynamoDB and S3 hold what their probes counted.
	DynamoDB *dynamodb.Facts
	S3       *s3.Facts
}

// Check connects to the endpoint, proves the credentials work and reads its
// facts. Failures are *engine.ConnectError values. The PostgreSQL session
// is a new one (the credentials are proven now), kept for the looks that
// follow in this walk (postgres.BorrowNew): a task reading the endpoint
// next finds it open.
func Check(ctx context.Context, s Spec) (Facts, error) {
	switch s.Kind() {
	case KindPostgres:
		pool, giveBack, err := postgres.BorrowNew(ctx, *s.Postgres)
		if err != nil {
			return Facts{}, err
		}
		defer giveBack()
		f, err := postgres.Probe(ctx, pool)
		if err != nil {
			return Facts{}, fmt.Errorf("probing %s: %w", s.Postgres.Target(), err)
		}
		return Facts{ServerVersion: f.ServerVersion, Postgres: &f}, nil
	case KindDynamoDB:
		client, err := dynamodb.NewClient(ctx, *s.DynamoDB)
		if err != nil {
			return Facts{}, err
		}
		f, err := dynamodb.Probe(ctx, client, *s.DynamoDB)
		if err != nil {
			return Facts{}, err
		}
		return Facts{DynamoDB: &f}, nil
	default:
		store, err := s3.Open(ctx, *s.S3)
		if err != nil {
			return Facts{}, err
		}
		defer func() { _ = store.Close() }()
		f, err := store.Probe(ctx)
		if err != nil {
			return Facts{}, err
		}
		return Facts{S3: &f}, nil
	}
}

// ReadCatalog reads the endpoint's catalog (for PostgreSQL narrowed to
// schemas when given) together with its facts.
func ReadCatalog(ctx context.Context, s Spec, schemas []string) (*catalog.Catalog, Facts, error) {
	switch s.Kind() {
	case KindPostgres:
		pool, giveBack, err := postgres.Borrow(ctx, *s.Postgres)
		if err != nil {
			return nil, Facts{}, err
		}
		defer giveBack()
		f, err := postgres.Probe(ctx, pool)
		if err != nil {
			return nil, Facts{}, fmt.Errorf("probing %s: %w", s.Postgres.Target(), err)
		}
		c, err := postgres.ReadCatalog(ctx, pool, postgres.Filter{Schemas: schemas})
		if err != nil {
			return nil, Facts{}, fmt.Errorf("reading the catalog of %s: %w", s.Postgres.Target(), err)
		}
		return c, Facts{ServerVersion: f.ServerVersion, Postgres: &f}, nil
	case KindDynamoDB:
		client, err := dynamodb.NewClient(ctx, *s.DynamoDB)
		if err != nil {
			return nil, Facts{}, err
		}
		f, err := dynamodb.Probe(ctx, client, *s.DynamoDB)
		if err != nil {
			return nil, Facts{}, err
		}
		c, err := dynamodb.ReadCatalog(ctx, client)
		if err != nil {
			return nil, Facts{}, fmt.Errorf("reading the catalog of %s: %w", s.DynamoDB.Target(), err)
		}
		return c, Facts{DynamoDB: &f}, nil
	default:
		store, err := s3.Open(ctx, *s.S3)
		if err != nil {
			return nil, Facts{}, err
		}
		defer func() { _ = store.Close() }()
		f, err := store.Probe(ctx)
		if err != nil {
			return nil, Facts{}, err
		}
		c, err := store.ReadCatalog(ctx)
		if err != nil {
			return nil, Facts{}, fmt.Errorf("reading the catalog of %s: %w", store.Target(), err)
		}
		return c, Facts{S3: &f}, nil
	}
}

// Target names the endpoint for messages, without secrets.
func (s Spec) Target() string {
	switch s.Kind() {
	case KindPostgres:
		return "PostgreSQL at " + s.Postgres.Target()
	case KindDynamoDB:
		return s.DynamoDB.Target()
	default:
		return s.S3.URL
	}
}
