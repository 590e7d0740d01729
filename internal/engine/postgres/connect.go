package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

// Hints shown with each ConnectError kind.
const (
	hintUnreachable     = "check that the server is running and that host and port are right; a firewall or security group may block it"
	hintAuthFailed      = "check username and password_wo (and bump password_wo_version after changing the password); the password is never shown"
	hintDatabaseMissing = "create the database or fix the database attribute"
	hintTLS             = "check sslmode and sslrootcert: the server must offer TLS for require, verify-ca and verify-full, sslrootcert must be the PEM file of the CA that signed the server's certificate, and verify-full also needs host to match the certificate's name"
	hintPermission      = "grant the user CONNECT on the database (GRANT CONNECT ON DATABASE ... TO ...) or allow it in pg_hba.conf"
	hintConfig          = "fix the endpoint's settings"
)

// Connect opens a small pool and pings it, so a bad endpoint fails here
// rather than in the middle of a migration. Every failure is an
// *engine.ConnectError whose text never contains the password.
func Connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	poolCfg, err := cfg.PoolConfig()
	if err != nil {
		return nil, classify(cfg, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, classify(cfg, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, classify(cfg, err)
	}
	return pool, nil
}

// classify turns a pgx error into an *engine.ConnectError. Order matters:
// with sslmode "prefer" pgx joins the failed TLS attempt's error with the
// plaintext attempt's, so a server's own answer (SQLSTATE) wins over a
// network failure, which wins over TLS.
func classify(cfg Config, err error) *engine.ConnectError {
	ce := &engine.ConnectError{Kind: engine.ConnectOther, Target: cfg.Target(), Err: redact(err, cfg.Password)}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		// 28000 is also pg_hba.conf having no entry for this host/user.
		ce.Kind, ce.Hint = engine.ConnectAuthFailed, hintAuthFailed
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		ce.Kind, ce.Hint = engine.ConnectDatabaseMissing, hintDatabaseMissing
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		ce.Kind, ce.Hint = engine.ConnectPermission, hintPermission
	case errors.As(err, &pgErr):
		ce.Hint = "the server refused the connection: " + pgErr.Message
	case isUnreachable(err):
		ce.Kind, ce.Hint = engine.ConnectUnreachable, hintUnreachable
	case isTLS(err):
		ce.Kind, ce.Hint = engine.ConnectTLS, hintTLS
	default:
		var parseErr *pgconn.ParseConfigError
		if errors.As(err, &parseErr) || !isConnectPhase(err) {
			ce.Hint = hintConfig
		}
	}
	return ce
}

func isUnreachable(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), pgconn.Timeout(err):
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

func isTLS(err error) bool {
	var (
		verifyErr    *tls.CertificateVerificationError
		alertErr     tls.AlertError
		recordErr    tls.RecordHeaderError
		authorityErr x509.UnknownAuthorityError
		hostErr      x509.HostnameError
		invalidErr   x509.CertificateInvalidError
	)
	if errors.As(err, &verifyErr) || errors.As(err, &alertErr) || errors.As(err, &recordErr) ||
		errors.As(err, &authorityErr) || errors.As(err, &hostErr) || errors.As(err, &invalidErr) {
		return true
	}
	// pgconn reports TLS trouble as plain text: "server refused TLS
	// connection", "tls error: ...", "failed to configure TLS" (unreadable
	// sslrootcert), "unable to read CA file".
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"server refused tls", "tls error", "failed to configure tls", "ca file", "x509:", "tls:"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isConnectPhase reports whether err came from pgx's connect path (as
// opposed to validating our own Config before any network traffic).
func isConnectPhase(err error) bool {
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr)
}

// redactedError hides a secret that a lower layer might have echoed. pgx
// does not put passwords in its errors, and we never put the password in a
// connection string; this is the belt to those braces.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "********"), err: err}
}
