package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// describeConcurrency bounds parallel DescribeTable calls: enough to read a
// few hundred tables quickly at plan time without tripping the control-plane
// rate limit (DescribeTable is throttled per account).
const describeConcurrency = 8

// ReadCatalog lists every table and describes each: item count, size and key
// schema. DynamoDB refreshes ItemCount and TableSizeBytes about every six
// hours, so both are estimates, which is what the catalog promises.
func ReadCatalog(ctx context.Context, client *ddb.Client) (*catalog.Catalog, error) {
	cfg := configOf(client)
	var names []string
	pages := ddb.NewListTablesPaginator(client, &ddb.ListTablesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing tables of %s: %w", cfg.Target(), knownOrWrapped(err, cfg, "dynamodb:ListTables"))
		}
		names = append(names, page.TableNames...)
	}

	tables := make([]*catalog.Table, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(describeConcurrency)
	for i, name := range names {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // a describe failed or ctx ended: start no more
			}
			out, err := client.DescribeTable(gctx, &ddb.DescribeTableInput{TableName: aws.String(name)})
			if err != nil {
				var gone *types.ResourceNotFoundException
				if errors.As(err, &gone) {
					// Dropped between ListTables and DescribeTable: it is no
					// longer part of what the endpoint holds.
					return nil
				}
				return fmt.Errorf("describing table %s: %w", name, knownOrWrapped(err, cfg, "dynamodb:DescribeTable on table "+name))
			}
			t := tableOf(out.Table)
			tables[i] = &t
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	cat := &catalog.Catalog{Engine: "dynamodb"}
	for _, t := range tables {
		if t != nil {
			cat.Tables = append(cat.Tables, *t)
		}
	}
	sort.Slice(cat.Tables, func(i, j int) bool { return cat.Tables[i].Name < cat.Tables[j].Name })
	return cat, nil
}

// tableOf maps a table description. Columns lists the primary key
// attributes in key order, then other indexed attributes by name; only
// key attributes are declared in DynamoDB, so nothing else is known.
func tableOf(d *types.TableDescription) catalog.Table {
	t := catalog.Table{
		Name:          aws.ToString(d.TableName),
		Kind:          "table",
		EstimatedRows: aws.ToInt64(d.ItemCount),
		Bytes:         aws.ToInt64(d.TableSizeBytes),
	}
	attrTypes := map[string]string{}
	for _, a := range d.AttributeDefinitions {
		attrTypes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	// HASH first, then RANGE, whatever order the service lists them in.
	key := make([]string, 2)
	for _, k := range d.KeySchema {
		switch k.KeyType {
		case types.KeyTypeHash:
			key[0] = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			key[1] = aws.ToString(k.AttributeName)
		}
	}
	inKey := map[string]bool{}
	for _, k := range key {
		if k != "" {
			t.PrimaryKey = append(t.PrimaryKey, k)
			inKey[k] = true
			t.Columns = append(t.Columns, catalog.Column{Name: k, Type: attrTypes[k], NotNull: true})
		}
	}
	var others []string
	for name := range attrTypes {
		if !inKey[name] {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	for _, name := range others {
		// Secondary-index keys may be absent from an item (sparse index).
		t.Columns = append(t.Columns, catalog.Column{Name: name, Type: attrTypes[name]})
	}
	return t
}

// configOf recovers the endpoint's settings from the client, so that
// ReadCatalog's errors name the same target as Probe's.
func configOf(client *ddb.Client) Config {
	o := client.Options()
	return Config{Region: o.Region, EndpointURL: aws.ToString(o.BaseEndpoint)}
}
