package awsconf

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

// Classifier classifies one AWS endpoint's errors. It holds no secret.
type Classifier struct {
	Service     string // names the service in hints: "DynamoDB", "S3"
	Target      string // the ConnectError's Target
	Region      string
	EndpointURL string // empty for AWS itself
	RoleARN     string // the role assumed, if any
	// CredentialHint says where the connector's credentials come from.
	CredentialHint string
	// AuthCodes are the error codes with which the service rejects a
	// request's credentials or signature.
	AuthCodes map[string]bool
}

// Classify turns an SDK error into a *engine.ConnectError. It recognizes what
// every AWS service shares — credentials the chain could not provide or the
// service rejected, TLS failures, endpoints that do not answer — and asks
// service, when not nil, about the service's own answers (a missing table or
// bucket, a denied action). service runs after the credential checks and
// before the network ones; it gets the API error code ("" when there is
// none), sets ce's Kind and Hint, and reports whether it recognized the error.
// Unrecognized failures come back with Kind ConnectOther.
func (c Classifier) Classify(err error, service func(ce *engine.ConnectError, code string) bool) *engine.ConnectError {
	ce := &engine.ConnectError{Kind: engine.ConnectOther, Target: c.Target, Err: err}
	var (
		credErr *credentialsError
		apiErr  smithy.APIError
		code    string
	)
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	switch {
	case errors.As(err, &credErr):
		ce.Kind = engine.ConnectAuthFailed
		ce.Hint = "no usable AWS credentials: " + c.CredentialHint
		if c.RoleARN != "" {
			ce.Hint = fmt.Sprintf("could not obtain credentials or assume role %s: %s", c.RoleARN, c.CredentialHint)
		}
	case c.AuthCodes[code]:
		ce.Kind = engine.ConnectAuthFailed
		ce.Hint = "the credentials were rejected (" + code + "): " + c.CredentialHint
	case service != nil && service(ce, code):
	case isTLS(err):
		ce.Kind = engine.ConnectTLS
		ce.Hint = "the endpoint's TLS certificate was not accepted: check endpoint_url (http:// for a local server)"
	case isUnreachable(err):
		ce.Kind = engine.ConnectUnreachable
		if c.EndpointURL != "" {
			ce.Hint = fmt.Sprintf("nothing answered at %s: check endpoint_url and that the server is running", c.EndpointURL)
		} else {
			ce.Hint = fmt.Sprintf("%s in region %s could not be reached: check region and network access to AWS", c.Service, c.Region)
		}
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
