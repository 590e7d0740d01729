package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
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
	ce := &engine.ConnectError{Kind: engine.ConnectOther, Target: s.Target(), Err: err}
	bucket := s.loc.Bucket
	var (
		credErr *credentialsError
		apiErr  smithy.APIError
		code    string
		status  int
		respErr *smithyhttp.ResponseError
	)
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	switch {
	case errors.As(err, &credErr):
		ce.Kind = engine.ConnectAuthFailed
		ce.Hint = "no usable AWS credentials: " + credentialHint
	case authCodes[code]:
		ce.Kind = engine.ConnectAuthFailed
		ce.Hint = "the credentials were rejected (" + code + "): " + credentialHint
	case code == "NoSuchBucket" || status == http.StatusNotFound && code != "NoSuchKey":
		ce.Kind = engine.ConnectDatabaseMissing
		ce.Err = fmt.Errorf("bucket %s does not exist: %w", bucket, err)
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
	case isTLS(err):
		ce.Kind = engine.ConnectTLS
		ce.Hint = "the endpoint's TLS certificate was not accepted: check endpoint_url (http:// for a local server)"
	case isUnreachable(err):
		ce.Kind = engine.ConnectUnreachable
		if s.cfg.EndpointURL != "" {
			ce.Hint = fmt.Sprintf("nothing answered at %s: check endpoint_url and that the server is running", s.cfg.EndpointURL)
		} else {
			ce.Hint = fmt.Sprintf("S3 in region %s could not be reached: check region and network access to AWS", s.cfg.Region)
		}
	}
	return ce
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

func isTLS(err error) bool {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		header      tls.RecordHeaderError
	)
	return errors.As(err, &unknownAuth) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &header)
}

// isUnreachable: the request never got a response — refused, DNS, network
// timeouts. A canceled context is the caller's doing, not the endpoint's.
func isUnreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var (
		sendErr *smithyhttp.RequestSendError
		dnsErr  *net.DNSError
		opErr   *net.OpError
	)
	return errors.As(err, &sendErr) || errors.As(err, &dnsErr) || errors.As(err, &opErr)
}
