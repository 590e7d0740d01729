package dynamodb_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf/awstest"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/dynamodb"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

func newClient(t *testing.T, cfg dynamodb.Config) *ddb.Client {
	t.Helper()
	c, err := dynamodb.NewClient(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewClient(%+v): %v", cfg, err)
	}
	return c
}

func createTable(ctx context.Context, c *ddb.Client, name string, key []types.KeySchemaElement, attrs []types.AttributeDefinition, gsis []types.GlobalSecondaryIndex) error {
	_, err := c.CreateTable(ctx, &ddb.CreateTableInput{
		TableName:              aws.String(name),
		KeySchema:              key,
		AttributeDefinitions:   attrs,
		GlobalSecondaryIndexes: gsis,
		BillingMode:            types.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("creating table %s: %w", name, err)
	}
	return nil
}

func TestProbeAndReadCatalog(t *testing.T) {
	awstest.Isolate(t, true)
	srv := testenv.StartDynaliteT(t)
	ctx := t.Context()
	cfg := dynamodb.Config{Region: "eu-west-1", EndpointURL: srv.Endpoint}
	c := newClient(t, cfg)

	// Hash-only table.
	if err := createTable(ctx, c, "customers",
		[]types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		[]types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		nil); err != nil {
		t.Fatal(err)
	}
	// Hash+range table, key schema listed RANGE first to check the order is
	// taken from KeyType, plus a secondary index whose key is optional.
	if err := createTable(ctx, c, "orders",
		[]types.KeySchemaElement{
			{AttributeName: aws.String("customer_id"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("id"), KeyType: types.KeyTypeRange},
		},
		[]types.AttributeDefinition{
			{AttributeName: aws.String("status"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("customer_id"), AttributeType: types.ScalarAttributeTypeS},
		},
		[]types.GlobalSecondaryIndex{{
			IndexName:  aws.String("by_status"),
			KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("status"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.PutItem(ctx, &ddb.PutItemInput{TableName: aws.String("customers"), Item: map[string]types.AttributeValue{
			"id":   &types.AttributeValueMemberS{Value: fmt.Sprintf("c%d", i)},
			"name": &types.AttributeValueMemberS{Value: strings.Repeat("x", 50)},
		}}); err != nil {
			t.Fatalf("putting customer %d: %v", i, err)
		}
	}
	for i := range 4 {
		if _, err := c.PutItem(ctx, &ddb.PutItemInput{TableName: aws.String("orders"), Item: map[string]types.AttributeValue{
			"customer_id": &types.AttributeValueMemberS{Value: "c1"},
			"id":          &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
			"status":      &types.AttributeValueMemberS{Value: "new"},
		}}); err != nil {
			t.Fatalf("putting order %d: %v", i, err)
		}
	}

	facts, err := dynamodb.Probe(ctx, c, cfg)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if want := (dynamodb.Facts{Region: "eu-west-1", Tables: 2}); facts != want {
		t.Errorf("Probe = %+v, want %+v", facts, want)
	}

	cat, err := dynamodb.ReadCatalog(ctx, c)
	if err != nil {
		t.Fatalf("ReadCatalog: %v", err)
	}
	if cat.Engine != "dynamodb" {
		t.Errorf("Engine = %q, want dynamodb", cat.Engine)
	}
	if len(cat.Tables) != 2 {
		t.Fatalf("got %d tables, want 2: %+v", len(cat.Tables), cat.Tables)
	}
	cust, ord := cat.Tables[0], cat.Tables[1]
	if cust.Name != "customers" || ord.Name != "orders" {
		t.Fatalf("tables = %s, %s; want customers, orders (sorted)", cust.Name, ord.Name)
	}
	for _, tc := range []struct {
		table   catalog.Table
		key     []string
		columns []catalog.Column
		rows    int64
	}{
		{cust, []string{"id"}, []catalog.Column{{Name: "id", Type: "S", NotNull: true}}, 3},
		{ord, []string{"customer_id", "id"}, []catalog.Column{
			{Name: "customer_id", Type: "S", NotNull: true},
			{Name: "id", Type: "N", NotNull: true},
			{Name: "status", Type: "S"},
		}, 4},
	} {
		if tc.table.Kind != "table" || tc.table.Schema != "" {
			t.Errorf("%s: Kind %q Schema %q, want table and no schema", tc.table.Name, tc.table.Kind, tc.table.Schema)
		}
		if !reflect.DeepEqual(tc.table.PrimaryKey, tc.key) {
			t.Errorf("%s: PrimaryKey = %q, want %q", tc.table.Name, tc.table.PrimaryKey, tc.key)
		}
		if !reflect.DeepEqual(tc.table.Columns, tc.columns) {
			t.Errorf("%s: Columns = %+v, want %+v", tc.table.Name, tc.table.Columns, tc.columns)
		}
		// dynalite, like DynamoDB between its six-hourly refreshes, reports
		// stale counts: the catalog must carry what DescribeTable says.
		d, err := c.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(tc.table.Name)})
		if err != nil {
			t.Fatal(err)
		}
		if tc.table.EstimatedRows != aws.ToInt64(d.Table.ItemCount) || tc.table.Bytes != aws.ToInt64(d.Table.TableSizeBytes) {
			t.Errorf("%s: EstimatedRows %d Bytes %d, want DescribeTable's %d and %d", tc.table.Name,
				tc.table.EstimatedRows, tc.table.Bytes, aws.ToInt64(d.Table.ItemCount), aws.ToInt64(d.Table.TableSizeBytes))
		}
		// The items are there: the key schema read back addresses them.
		out, err := c.Scan(ctx, &ddb.ScanInput{TableName: aws.String(tc.table.Name), Select: types.SelectCount})
		if err != nil {
			t.Fatal(err)
		}
		if int64(out.Count) != tc.rows {
			t.Errorf("%s: %d items, want %d", tc.table.Name, out.Count, tc.rows)
		}
	}
}

// More tables than one ListTables page (100) and than the describe
// concurrency: every page is counted and every table described once.
func TestReadCatalogManyTables(t *testing.T) {
	awstest.Isolate(t, true)
	srv := testenv.StartDynaliteT(t)
	ctx := t.Context()
	cfg := dynamodb.Config{Region: "us-east-1", EndpointURL: srv.Endpoint}
	c := newClient(t, cfg)
	const n = 105
	for i := range n {
		name := fmt.Sprintf("t%03d", n-1-i) // created out of order
		if err := createTable(ctx, c, name,
			[]types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
			[]types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeB}},
			nil); err != nil {
			t.Fatal(err)
		}
	}
	facts, err := dynamodb.Probe(ctx, c, cfg)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if facts.Tables != n {
		t.Errorf("Probe counted %d tables, want %d", facts.Tables, n)
	}
	cat, err := dynamodb.ReadCatalog(ctx, c)
	if err != nil {
		t.Fatalf("ReadCatalog: %v", err)
	}
	if len(cat.Tables) != n {
		t.Fatalf("got %d tables, want %d", len(cat.Tables), n)
	}
	for i, tb := range cat.Tables {
		if want := fmt.Sprintf("t%03d", i); tb.Name != want {
			t.Fatalf("table %d = %s, want %s", i, tb.Name, want)
		}
		if want := []catalog.Column{{Name: "pk", Type: "B", NotNull: true}}; !reflect.DeepEqual(tb.Columns, want) {
			t.Fatalf("%s: Columns = %+v, want %+v", tb.Name, tb.Columns, want)
		}
		if tb.EstimatedRows != 0 {
			t.Errorf("%s: EstimatedRows = %d, want 0", tb.Name, tb.EstimatedRows)
		}
	}
}

func TestProbeUnreachable(t *testing.T) {
	awstest.Isolate(t, true)
	endpoint := awstest.ClosedEndpoint(t)
	cfg := dynamodb.Config{Region: "eu-west-1", EndpointURL: endpoint}
	_, err := dynamodb.Probe(t.Context(), newClient(t, cfg), cfg)
	ce, ok := engine.AsConnectError(err)
	if !ok {
		t.Fatalf("Probe error %v (%T) is not a ConnectError", err, err)
	}
	t.Logf("%v\n\thint: %s", err, ce.Hint)
	if ce.Kind != engine.ConnectUnreachable {
		t.Errorf("Kind = %v, want %v (err: %v)", ce.Kind, engine.ConnectUnreachable, err)
	}
	if want := "dynamodb at " + endpoint + " (eu-west-1)"; ce.Target != want {
		t.Errorf("Target = %q, want %q", ce.Target, want)
	}
	if !strings.Contains(ce.Hint, endpoint) {
		t.Errorf("Hint %q does not name the endpoint %s", ce.Hint, endpoint)
	}
}

// With nothing in the chain, Probe fails before sending anything, as an
// authentication problem that points at the chain.
func TestProbeNoCredentials(t *testing.T) {
	awstest.Isolate(t, false)
	cfg := dynamodb.Config{Region: "eu-west-1", EndpointURL: awstest.ClosedEndpoint(t)}
	_, err := dynamodb.Probe(t.Context(), newClient(t, cfg), cfg)
	ce, ok := engine.AsConnectError(err)
	if !ok {
		t.Fatalf("Probe error %v (%T) is not a ConnectError", err, err)
	}
	t.Logf("%v\n\thint: %s", err, ce.Hint)
	if ce.Kind != engine.ConnectAuthFailed {
		t.Errorf("Kind = %v, want %v (err: %v)", ce.Kind, engine.ConnectAuthFailed, err)
	}
	for _, want := range []string{"AWS_ACCESS_KEY_ID", "profile", "role_arn"} {
		if !strings.Contains(ce.Hint, want) {
			t.Errorf("Hint %q does not mention %s", ce.Hint, want)
		}
	}
	// ReadCatalog classifies the same way, and says what it was doing.
	_, err = dynamodb.ReadCatalog(t.Context(), newClient(t, cfg))
	if ce, ok := engine.AsConnectError(err); !ok || ce.Kind != engine.ConnectAuthFailed || !strings.HasPrefix(err.Error(), "listing tables of dynamodb at ") {
		t.Errorf("ReadCatalog error = %v, want an authentication failure while listing tables", err)
	}
}

func TestNewClientUnknownProfile(t *testing.T) {
	awstest.Isolate(t, true)
	_, err := dynamodb.NewClient(t.Context(), dynamodb.Config{Region: "eu-west-1", Profile: "nosuch"})
	ce, ok := engine.AsConnectError(err)
	if !ok {
		t.Fatalf("NewClient error %v (%T) is not a ConnectError", err, err)
	}
	if ce.Kind != engine.ConnectAuthFailed || !strings.Contains(ce.Hint, `"nosuch"`) {
		t.Errorf("got Kind %v Hint %q; want auth failure naming the profile", ce.Kind, ce.Hint)
	}
}

func TestNewClientRegionRequired(t *testing.T) {
	awstest.Isolate(t, true)
	_, err := dynamodb.NewClient(t.Context(), dynamodb.Config{})
	if err == nil || !strings.Contains(err.Error(), "region is required") {
		t.Fatalf("NewClient without region: err = %v, want 'region is required'", err)
	}
}

func TestNewClientSettings(t *testing.T) {
	awstest.Isolate(t, true)
	c := newClient(t, dynamodb.Config{Region: "ap-south-1", EndpointURL: "http://127.0.0.1:8000"})
	o := c.Options()
	if o.Region != "ap-south-1" || aws.ToString(o.BaseEndpoint) != "http://127.0.0.1:8000" {
		t.Errorf("client region %q endpoint %q", o.Region, aws.ToString(o.BaseEndpoint))
	}
	creds, err := o.Credentials.Retrieve(t.Context())
	if err != nil || creds.AccessKeyID != "test" || creds.Source != "EnvConfigCredentials" {
		t.Errorf("credentials from the chain: %+v, %v; want the environment's", creds, err)
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		cfg  dynamodb.Config
		want string
	}{
		{dynamodb.Config{Region: "eu-west-1"}, "dynamodb eu-west-1"},
		{dynamodb.Config{Region: "eu-west-1", EndpointURL: "http://127.0.0.1:8000"}, "dynamodb at http://127.0.0.1:8000 (eu-west-1)"},
	} {
		if got := tc.cfg.Target(); got != tc.want {
			t.Errorf("Target() = %q, want %q", got, tc.want)
		}
	}
}
