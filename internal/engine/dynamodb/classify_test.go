package dynamodb

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// The server-side codes cannot be provoked from dynalite, which accepts any
// key: check their classification on the error shapes the SDK returns.
func TestClassifyAPIErrors(t *testing.T) {
	cfg := Config{Region: "eu-west-1"}
	for _, tc := range []struct {
		code     string
		kind     engine.ConnectErrorKind
		hintPart string
	}{
		{"UnrecognizedClientException", engine.ConnectAuthFailed, "role_arn"},
		{"InvalidSignatureException", engine.ConnectAuthFailed, "AWS_ACCESS_KEY_ID"},
		{"ExpiredTokenException", engine.ConnectAuthFailed, "profile"},
		{"AccessDeniedException", engine.ConnectPermission, "dynamodb:ListTables"},
		{"ThrottlingException", engine.ConnectOther, ""},
	} {
		err := &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "ListTables",
			Err: &smithy.GenericAPIError{Code: tc.code, Message: "m"}}
		ce := classify(fmt.Errorf("page 1: %w", err), cfg, "dynamodb:ListTables")
		if ce.Kind != tc.kind || !strings.Contains(ce.Hint, tc.hintPart) {
			t.Errorf("%s: Kind %v Hint %q; want %v with %q", tc.code, ce.Kind, ce.Hint, tc.kind, tc.hintPart)
		}
		if !errors.Is(ce, err) || ce.Target != "dynamodb eu-west-1" {
			t.Errorf("%s: ConnectError %v does not wrap the cause or name the target", tc.code, ce)
		}
	}
}

func TestTableOf(t *testing.T) {
	d := &types.TableDescription{
		TableName:      aws.String("orders"),
		ItemCount:      aws.Int64(1234),
		TableSizeBytes: aws.Int64(56789),
		// Service order is not key order: RANGE listed first.
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("id"), KeyType: types.KeyTypeRange},
			{AttributeName: aws.String("customer_id"), KeyType: types.KeyTypeHash},
		},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("status"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("customer_id"), AttributeType: types.ScalarAttributeTypeB},
			{AttributeName: aws.String("created"), AttributeType: types.ScalarAttributeTypeN},
		},
	}
	want := catalog.Table{
		Name: "orders", Kind: "table", EstimatedRows: 1234, Bytes: 56789,
		PrimaryKey: []string{"customer_id", "id"},
		Columns: []catalog.Column{
			{Name: "customer_id", Type: "B", NotNull: true},
			{Name: "id", Type: "N", NotNull: true},
			{Name: "created", Type: "N"},
			{Name: "status", Type: "S"},
		},
	}
	if got := tableOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("tableOf =\n%+v\nwant\n%+v", got, want)
	}
}
