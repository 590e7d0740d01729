package s3

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

// responseError builds the error shape the SDK returns for an S3 error
// response; gofakes3 accepts any key, so these codes cannot be provoked.
func responseError(status int, code string, header http.Header) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "HeadBucket", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: header}},
			Err:      &smithy.GenericAPIError{Code: code},
		},
	}}
}

func TestClassify(t *testing.T) {
	s := &Store{cfg: Config{Region: "us-east-1"}, loc: Location{Scheme: "s3", Bucket: "archive", Prefix: "shop/"}}
	for _, tc := range []struct {
		name     string
		err      error
		kind     engine.ConnectErrorKind
		hintPart string
	}{
		{"head 404", responseError(404, "NotFound", nil), engine.ConnectDatabaseMissing, "create the bucket"},
		{"list NoSuchBucket", responseError(404, "NoSuchBucket", nil), engine.ConnectDatabaseMissing, "create the bucket"},
		{"head 403", responseError(403, "Forbidden", nil), engine.ConnectPermission, "s3:ListBucket on bucket archive"},
		{"AccessDenied", responseError(403, "AccessDenied", nil), engine.ConnectPermission, "bucket policy"},
		{"bad key", responseError(403, "InvalidAccessKeyId", nil), engine.ConnectAuthFailed, "AWS_ACCESS_KEY_ID"},
		{"bad secret", responseError(403, "SignatureDoesNotMatch", nil), engine.ConnectAuthFailed, "credential chain"},
		{"expired", responseError(400, "ExpiredToken", nil), engine.ConnectAuthFailed, "AWS_SESSION_TOKEN"},
		{"wrong region", responseError(301, "MovedPermanently", http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}), engine.ConnectOther, `set region = "eu-west-1"`},
		{"slow down", responseError(503, "SlowDown", nil), engine.ConnectOther, ""},
	} {
		ce := s.classify(tc.err, "s3:ListBucket")
		if ce.Kind != tc.kind || !strings.Contains(ce.Hint, tc.hintPart) {
			t.Errorf("%s: Kind %v Hint %q; want %v with %q", tc.name, ce.Kind, ce.Hint, tc.kind, tc.hintPart)
		}
		if !errors.Is(ce, tc.err) || ce.Target != "s3://archive/shop/ (us-east-1)" {
			t.Errorf("%s: %v does not wrap the cause or name the target", tc.name, ce)
		}
	}
	if err := s.classify(responseError(404, "NotFound", nil), "s3:ListBucket"); !strings.Contains(err.Error(), "bucket archive does not exist") {
		t.Errorf("missing bucket error %q does not say so", err)
	}
}
