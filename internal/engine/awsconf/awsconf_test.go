package awsconf_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf/awstest"
)

func TestLoad(t *testing.T) {
	awstest.Isolate(t, true)
	cfg, err := awsconf.Load(t.Context(), "svc", awsconf.Settings{Region: "eu-west-1"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Region != "eu-west-1" {
		t.Errorf("Region = %q, want eu-west-1", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(t.Context())
	if err != nil || creds.AccessKeyID != "test" || creds.Source != "EnvConfigCredentials" {
		t.Errorf("credentials from the chain: %+v, %v; want the environment's", creds, err)
	}
}

func TestLoadUnknownProfile(t *testing.T) {
	awstest.Isolate(t, true)
	_, err := awsconf.Load(t.Context(), "svc", awsconf.Settings{Region: "eu-west-1", Profile: "nosuch"})
	ce, ok := engine.AsConnectError(err)
	if !ok {
		t.Fatalf("Load error %v (%T) is not a ConnectError", err, err)
	}
	if ce.Kind != engine.ConnectAuthFailed || ce.Target != "svc" || !strings.Contains(ce.Hint, `"nosuch"`) {
		t.Errorf("got Kind %v Target %q Hint %q; want auth failure of svc naming the profile", ce.Kind, ce.Target, ce.Hint)
	}

	// A profile the connector did not ask for is the environment's problem,
	// reported as it comes.
	t.Setenv("AWS_PROFILE", "nosuch")
	_, err = awsconf.Load(t.Context(), "svc", awsconf.Settings{})
	if _, ok := engine.AsConnectError(err); ok || err == nil || !strings.HasPrefix(err.Error(), "loading AWS configuration for svc: ") {
		t.Errorf("Load with AWS_PROFILE=nosuch: err = %v, want a plain loading error", err)
	}
}

// With nothing in the chain, retrieving credentials fails with an error
// Classify recognizes, whatever wraps it.
func TestClassifyNoCredentials(t *testing.T) {
	awstest.Isolate(t, false)
	cfg, err := awsconf.Load(t.Context(), "svc", awsconf.Settings{Region: "eu-west-1"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	_, err = cfg.Credentials.Retrieve(t.Context())
	if err == nil {
		t.Fatal("Retrieve found credentials in an empty chain")
	}
	err = &smithy.OperationError{ServiceID: "Svc", OperationName: "List", Err: err}
	c := awsconf.Classifier{Service: "Svc", Target: "svc", CredentialHint: "set AWS_ACCESS_KEY_ID"}
	ce := c.Classify(err, nil)
	if ce.Kind != engine.ConnectAuthFailed || ce.Hint != "no usable AWS credentials: set AWS_ACCESS_KEY_ID" || !errors.Is(ce, err) {
		t.Errorf("got %v, hint %q; want an authentication failure wrapping the cause", ce, ce.Hint)
	}
	c.RoleARN = "arn:aws:iam::123456789012:role/reader"
	if ce := c.Classify(err, nil); !strings.Contains(ce.Hint, "assume role "+c.RoleARN) {
		t.Errorf("Hint %q does not name the role", ce.Hint)
	}
}

func TestClassify(t *testing.T) {
	apiErr := func(code string) error {
		return &smithy.OperationError{ServiceID: "Svc", OperationName: "List", Err: &smithy.GenericAPIError{Code: code}}
	}
	refused := &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	// service knows one code of its own, and claims every refused connection
	// to show that it is asked before the network checks.
	service := func(ce *engine.ConnectError, code string) bool {
		switch {
		case code == "NoSuchThing":
			ce.Kind = engine.ConnectDatabaseMissing
		case errors.Is(ce.Err, refused):
			ce.Hint = "service's"
		default:
			return false
		}
		return true
	}
	for _, tc := range []struct {
		name        string
		err         error
		endpointURL string
		service     func(*engine.ConnectError, string) bool
		kind        engine.ConnectErrorKind
		hint        string
	}{
		{"auth code", apiErr("BadKey"), "", service, engine.ConnectAuthFailed, "the credentials were rejected (BadKey): set AWS_ACCESS_KEY_ID"},
		{"service code", apiErr("NoSuchThing"), "", service, engine.ConnectDatabaseMissing, ""},
		{"unknown code", apiErr("SlowDown"), "", service, engine.ConnectOther, ""},
		{"service before network", refused, "", service, engine.ConnectOther, "service's"},
		{"unreachable AWS", refused, "", nil, engine.ConnectUnreachable, "Svc in region eu-west-1 could not be reached: check region and network access to AWS"},
		{"unreachable endpoint", refused, "http://127.0.0.1:9", nil, engine.ConnectUnreachable, "nothing answered at http://127.0.0.1:9: check endpoint_url and that the server is running"},
		{"canceled", &smithyhttp.RequestSendError{Err: context.Canceled}, "", nil, engine.ConnectOther, ""},
		{"TLS", &smithyhttp.RequestSendError{Err: x509.UnknownAuthorityError{}}, "", nil, engine.ConnectTLS, "the endpoint's TLS certificate was not accepted: check endpoint_url (http:// for a local server)"},
	} {
		c := awsconf.Classifier{
			Service: "Svc", Target: "svc", Region: "eu-west-1", EndpointURL: tc.endpointURL,
			CredentialHint: "set AWS_ACCESS_KEY_ID", AuthCodes: map[string]bool{"BadKey": true},
		}
		ce := c.Classify(tc.err, tc.service)
		if ce.Kind != tc.kind || ce.Hint != tc.hint {
			t.Errorf("%s: Kind %v Hint %q; want %v with %q", tc.name, ce.Kind, ce.Hint, tc.kind, tc.hint)
		}
		if !errors.Is(ce, tc.err) || ce.Target != "svc" {
			t.Errorf("%s: %v does not wrap the cause or name the target", tc.name, ce)
		}
	}
}
