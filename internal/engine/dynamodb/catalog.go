package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	err := forEachBounded(ctx, len(names), describeConcurrency, func(ctx context.Context, i int) error {
		name := names[i]
		out, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(name)})
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
	if err != nil {
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

// forEachBounded runs fn(0..n-1) with at most limit in flight, stops
// starting new calls after the first error and returns that error (the
// others are mostly the cancellation it caused).
func forEachBounded(ctx context.Context, n, limit int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, limit)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
