package dynamodb

import (
	"context"

	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Facts is what Probe learned about a reachable endpoint.
type Facts struct {
	Region string
	Tables int
}

// Probe checks that the endpoint answers and accepts the credentials by
// listing its tables (every page, so Tables is exact). Failures are
// *engine.ConnectError so the caller can say what to fix.
func Probe(ctx context.Context, client *ddb.Client, cfg Config) (Facts, error) {
	n := 0
	pages := ddb.NewListTablesPaginator(client, &ddb.ListTablesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return Facts{}, classify(err, cfg, "dynamodb:ListTables")
		}
		n += len(page.TableNames)
	}
	return Facts{Region: cfg.Region, Tables: n}, nil
}
