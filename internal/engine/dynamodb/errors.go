package dynamodb

import (
	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf"
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
	c := awsconf.Classifier{
		Service: "DynamoDB", Target: cfg.Target(),
		Region: cfg.Region, EndpointURL: cfg.EndpointURL, RoleARN: cfg.RoleARN,
		CredentialHint: credentialHint, AuthCodes: authCodes,
	}
	return c.Classify(err, func(ce *engine.ConnectError, code string) bool {
		switch code {
		case "AccessDeniedException":
			ce.Kind = engine.ConnectPermission
			ce.Hint = "the identity is not allowed " + action + ": grant it in the identity's IAM policy"
		case "ResourceNotFoundException":
			ce.Kind = engine.ConnectDatabaseMissing
		default:
			return false
		}
		return true
	})
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
