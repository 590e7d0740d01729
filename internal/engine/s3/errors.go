package s3

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"syscall"

	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf"
)

const credentialHint = "check the AWS credential chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, or the shared config profile (AWS_PROFILE)"

// authCodes are the error codes S3 returns when the request's credentials
// or signature are not accepted.
var authCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"ExpiredToken":          true,
	"InvalidToken":          true,
	"TokenRefreshRequired":  true,
	"MissingSecurityHeader": true,
}

// classify turns an SDK error into a *engine.ConnectError; action is the IAM
// action the request needed, named when access is denied. Unrecognized
// failures come back with Kind ConnectOther.
func (s *Store) classify(err error, action string) *engine.ConnectError {
	c := awsconf.Classifier{
		Service: "S3", Target: s.Target(),
		Region: s.cfg.Region, EndpointURL: s.cfg.EndpointURL,
		CredentialHint: credentialHint, AuthCodes: authCodes,
	}
	return c.Classify(err, func(ce *engine.ConnectError, code string) bool {
		return s.bucketError(ce, code, action)
	})
}

// bucketError recognizes S3's answers about the bucket: missing, denied, in
// another region. HEAD responses have no body, hence no code: their status
// says it.
func (s *Store) bucketError(ce *engine.ConnectError, code, action string) bool {
	bucket := s.loc.Bucket
	var (
		status  int
		respErr *smithyhttp.ResponseError
	)
	if errors.As(ce.Err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket" || status == http.StatusNotFound && code != "NoSuchKey":
		ce.Kind = engine.ConnectDatabaseMissing
		ce.Err = fmt.Errorf("bucket %s does not exist: %w", bucket, ce.Err)
		ce.Hint = "create the bucket (aws_s3_bucket) or correct the bucket in url"
	case code == "AccessDenied" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		ce.Kind = engine.ConnectPermission
		ce.Hint = fmt.Sprintf("the identity is not allowed %s on bucket %s: grant it in the identity's IAM policy or the bucket policy", action, bucket)
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently:
		ce.Hint = fmt.Sprintf("bucket %s is not in region %s: set region to the bucket's region", bucket, s.cfg.Region)
		if respErr != nil && respErr.Response != nil {
			if r := respErr.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
				ce.Hint = fmt.Sprintf("bucket %s is in region %s, not %s: set region = %q", bucket, r, s.cfg.Region, r)
			}
		}
	default:
		return false
	}
	return true
}

// knownOrWrapped keeps a classified error for callers that branch on
// ConnectError, and otherwise returns err as is so that an unexpected
// failure is not dressed up as a connection problem.
func (s *Store) knownOrWrapped(err error, action string) error {
	if ce := s.classify(err, action); ce.Kind != engine.ConnectOther {
		return ce
	}
	return err
}

// fileErr classifies a local filesystem error on path.
func (s *Store) fileErr(err error, path string) *engine.ConnectError {
	ce := &engine.ConnectError{Kind: engine.ConnectOther, Target: s.Target(), Err: err}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ce.Kind = engine.ConnectDatabaseMissing
		ce.Err = fmt.Errorf("directory %s does not exist: %w", path, err)
		ce.Hint = fmt.Sprintf("create it (mkdir -p %s) or correct the url", path)
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS):
		ce.Kind = engine.ConnectPermission
		ce.Hint = fmt.Sprintf("the user running terraform cannot read and write %s: change its owner or mode", path)
	}
	return ce
}
