package postgres

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

func TestClassify(t *testing.T) {
	cfg := Config{Host: "db.internal", Port: 5433, Database: "shop", Password: "hunter2-secret"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tlsRefused := errors.New("tls error: server refused TLS connection")
	for _, tc := range []struct {
		name string
		err  error
		want engine.ConnectErrorKind
		hint string
	}{
		{"bad password", &pgconn.PgError{Code: "28P01", Message: "password authentication failed"}, engine.ConnectAuthFailed, hintAuthFailed},
		{"no hba entry", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "28000"}), engine.ConnectAuthFailed, hintAuthFailed},
		{"no database", &pgconn.PgError{Code: "3D000"}, engine.ConnectDatabaseMissing, hintDatabaseMissing},
		{"no connect privilege", &pgconn.PgError{Code: "42501"}, engine.ConnectPermission, hintPermission},
		{"too many connections", &pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"}, engine.ConnectOther, "the server refused the connection: sorry, too many clients already"},
		{"refused", refused, engine.ConnectUnreachable, hintUnreachable},
		{"dns", &net.DNSError{Err: "no such host", Name: "db.internal", IsNotFound: true}, engine.ConnectUnreachable, hintUnreachable},
		{"deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), engine.ConnectUnreachable, hintUnreachable},
		{"io timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, engine.ConnectUnreachable, hintUnreachable},
		{"server refused tls", tlsRefused, engine.ConnectTLS, hintTLS},
		{"unknown authority", fmt.Errorf("tls error: %w", x509.UnknownAuthorityError{}), engine.ConnectTLS, hintTLS},
		{"hostname mismatch", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "db.internal"}, engine.ConnectTLS, hintTLS},
		// sslmode prefer: the TLS attempt's error is joined with the plaintext attempt's.
		{"prefer then bad password", errors.Join(tlsRefused, &pgconn.PgError{Code: "28P01"}), engine.ConnectAuthFailed, hintAuthFailed},
		{"prefer then refused", errors.Join(refused, refused), engine.ConnectUnreachable, hintUnreachable},
		{"config", errors.New("postgres endpoint: host is required"), engine.ConnectOther, hintConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := classify(cfg, tc.err)
			if ce.Kind != tc.want {
				t.Errorf("Kind = %v, want %v", ce.Kind, tc.want)
			}
			if ce.Hint != tc.hint {
				t.Errorf("Hint = %q, want %q", ce.Hint, tc.hint)
			}
			if ce.Target != "db.internal:5433/shop" {
				t.Errorf("Target = %q", ce.Target)
			}
			if !errors.Is(ce, tc.err) {
				t.Errorf("ConnectError does not wrap the original error")
			}
		})
	}
}

func TestClassifyRedactsPassword(t *testing.T) {
	cfg := Config{Host: "h", Database: "d", Password: "s3cr3t-value"}
	ce := classify(cfg, errors.New("something echoed s3cr3t-value back"))
	if strings.Contains(ce.Error(), "s3cr3t-value") {
		t.Fatalf("error text contains the password: %q", ce.Error())
	}
	if !strings.Contains(ce.Error(), "something echoed ******** back") {
		t.Errorf("error text lost its context: %q", ce.Error())
	}
}
