package dynamodb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

const credentialHint = "check the AWS credential chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, the shared config profile, or role_arn"

// authCodes are the error codes DynamoDB and STS return when the request's
// credentials or signature are not accepted.
var authCodes = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"MissingAuthenticationToken":          true,
	"MissingAuthenticationTokenException": true,
	"ExpiredToken":                        true,
	"ExpiredTokenException":               true,
	"InvalidClientTokenId":                true,
	"SignatureDoesNotMatch":               true,
}

// classify turns an SDK error into a *engine.ConnectError; action is the IAM
// action the request needed, named in the hint when access is denied.
// Unrecognized failures come back with Kind ConnectOther.
func classify(err error, cfg Config, action string) *engine.ConnectError {
	ce := &engine.ConnectError{Kind: engine.ConnectOther, Target: cfg.Target(), Err: err}
	var credErr *credentialsError
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &credErr):
		ce.Kind = engine.ConnectAuthFailed
		ce.Hint = "no usable AWS credentials: " + credentialHint
		if cfg.RoleARN != "" {
			ce.Hint = fmt.Sprintf("could not obtain credentials or assume role %s: %s", cfg.RoleARN, credentialHint)
		}
	case errors.As(err, &apiErr) && authCodes[apiErr.ErrorCode()]:
		ce.Kind = engine.ConnectAuthFailed
		ce.Hint = "the credentials were rejected (" + apiErr.ErrorCode() + "): " + credentialHint
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDeniedException":
		ce.Kind = engine.ConnectPermission
		ce.Hint = "the identity is not allowed " + action + ": grant it in the identity's IAM policy"
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "ResourceNotFoundException":
		ce.Kind = engine.ConnectDatabaseMissing
	case isTLS(err):
		ce.Kind = engine.ConnectTLS
		ce.Hint = "the endpoint's TLS certificate was not accepted: check endpoint_url (http:// for a local server)"
	case isUnreachable(err):
		ce.Kind = engine.ConnectUnreachable
		if cfg.EndpointURL != "" {
			ce.Hint = fmt.Sprintf("nothing answered at %s: check endpoint_url and that the server is running", cfg.EndpointURL)
		} else {
			ce.Hint = fmt.Sprintf("DynamoDB in region %s could not be reached: check region and network access to AWS", cfg.Region)
		}
	}
	return ce
}

// knownOrWrapped keeps a classified error for callers that branch on
// ConnectError, and otherwise returns err as is so that an unexpected
// failure is not dressed up as a connection problem.
func knownOrWrapped(err error, cfg Config, action string) error {
	if ce := classify(err, cfg, action); ce.Kind != engine.ConnectOther {
		return ce
	}
	return err
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
