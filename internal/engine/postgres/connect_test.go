package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

const (
	connRole     = "connect_tester"
	connPassword = "Right-Pa55word-4f7a"
	badPassword  = "Wrong-Pa55word-9c1e"
)

// connRoleMade is set once connectRole has created the role; the tests
// that use it are not parallel.
var connRoleMade bool

// connectRole creates a password-authenticated role once per run.
func connectRole(t *testing.T) {
	t.Helper()
	if connRoleMade {
		return
	}
	if err := pg.CreateRole(t.Context(), connRole, connPassword); err != nil {
		t.Fatal(err)
	}
	connRoleMade = true
}

func wantConnectError(t *testing.T, err error, kind engine.ConnectErrorKind) *engine.ConnectError {
	t.Helper()
	if err == nil {
		t.Fatalf("Connect succeeded, want %v", kind)
	}
	ce, ok := engine.AsConnectError(err)
	if !ok {
		t.Fatalf("error is %T, want *engine.ConnectError: %v", err, err)
	}
	if ce.Kind != kind {
		t.Fatalf("Kind = %v, want %v: %v", ce.Kind, kind, err)
	}
	for _, secret := range []string{connPassword, badPassword} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error text contains a password: %q", err.Error())
		}
	}
	return ce
}

func TestConnectRightPassword(t *testing.T) {
	connectRole(t)
	for _, mode := range []string{"disable", ""} { // "" is prefer: TLS refused, plaintext fallback
		t.Run("sslmode="+mode, func(t *testing.T) {
			pool := connect(t, Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: connRole, Password: connPassword, SSLMode: mode})
			var user, app string
			if err := pool.QueryRow(t.Context(), "SELECT current_user, current_setting('application_name')").Scan(&user, &app); err != nil {
				t.Fatal(err)
			}
			if user != connRole || app != "terraform-provider-migration" {
				t.Errorf("current_user, application_name = %q, %q; want %q, terraform-provider-migration", user, app, connRole)
			}
		})
	}
}

func TestConnectPasswordFromEnvironment(t *testing.T) {
	connectRole(t)
	t.Setenv("PGPASSWORD", connPassword)
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	connect(t, Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: connRole, SSLMode: "disable"})
}

func TestConnectPasswordFromPassfile(t *testing.T) {
	connectRole(t)
	passfile := filepath.Join(t.TempDir(), "pgpass")
	line := fmt.Sprintf("%s:%d:*:%s:%s\n", pg.Host, pg.Port, connRole, connPassword)
	if err := os.WriteFile(passfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", passfile)
	connect(t, Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: connRole, SSLMode: "disable"})
}

func TestConnectWrongPassword(t *testing.T) {
	connectRole(t)
	for _, mode := range []string{"disable", ""} {
		t.Run("sslmode="+mode, func(t *testing.T) {
			cfg := Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: connRole, Password: badPassword, SSLMode: mode}
			_, err := Connect(t.Context(), cfg)
			ce := wantConnectError(t, err, engine.ConnectAuthFailed)
			if ce.Hint != hintAuthFailed {
				t.Errorf("Hint = %q", ce.Hint)
			}
			if ce.Target != cfg.Target() {
				t.Errorf("Target = %q, want %q", ce.Target, cfg.Target())
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestConnectMissingDatabase(t *testing.T) {
	_, err := Connect(t.Context(), superConfig("no_such_database"))
	ce := wantConnectError(t, err, engine.ConnectDatabaseMissing)
	if ce.Hint != hintDatabaseMissing || !strings.Contains(err.Error(), "/no_such_database") {
		t.Errorf("Hint %q, error %q", ce.Hint, err)
	}
}

func TestConnectClosedPort(t *testing.T) {
	// Take a free port, then release it so nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a tcp listener has a *TCPAddr
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Host: "127.0.0.1", Port: port, Database: "postgres", Username: connRole, Password: connPassword}
	_, err = Connect(t.Context(), cfg)
	ce := wantConnectError(t, err, engine.ConnectUnreachable)
	if want := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
	if ce.Hint != hintUnreachable {
		t.Errorf("Hint = %q", ce.Hint)
	}
}

func TestConnectTLSRequiredButNotOffered(t *testing.T) {
	// The test cluster has ssl = off, so require must fail rather than fall back.
	cfg := superConfig("postgres")
	cfg.SSLMode = "require"
	_, err := Connect(t.Context(), cfg)
	ce := wantConnectError(t, err, engine.ConnectTLS)
	if !strings.Contains(ce.Hint, "sslmode") || !strings.Contains(ce.Hint, "sslrootcert") {
		t.Errorf("Hint %q should name sslmode and sslrootcert", ce.Hint)
	}
}

func TestConnectUnreadableRootCert(t *testing.T) {
	cfg := superConfig("postgres")
	cfg.SSLMode = "verify-full"
	cfg.SSLRootCert = filepath.Join(t.TempDir(), "missing-ca.pem")
	_, err := Connect(t.Context(), cfg)
	_ = wantConnectError(t, err, engine.ConnectTLS)
	if !strings.Contains(err.Error(), "missing-ca.pem") {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestConnectBadConfig(t *testing.T) {
	cfg := superConfig("postgres")
	cfg.SSLMode = "sometimes"
	_, err := Connect(t.Context(), cfg)
	ce := wantConnectError(t, err, engine.ConnectOther)
	if ce.Hint != hintConfig || !errors.Is(err, ce.Err) {
		t.Errorf("Hint %q, err %v", ce.Hint, err)
	}
}

func TestConnectUnknownHost(t *testing.T) {
	cfg := Config{Host: "no-such-host.invalid", Database: "shop", Username: "u", Password: connPassword, ConnectTimeout: 2 * time.Second}
	_, err := Connect(t.Context(), cfg)
	_ = wantConnectError(t, err, engine.ConnectUnreachable)
	if !strings.Contains(err.Error(), "no-such-host.invalid:5432") {
		t.Errorf("error %q does not name host:port", err)
	}
}

func TestConnectDeadline(t *testing.T) {
	// 192.0.2.0/24 is TEST-NET-1: nothing answers there. Depending on the
	// network the dial times out or fails at once; both are unreachable.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := Connect(ctx, Config{Host: "192.0.2.1", Database: "shop", Username: "u", Password: connPassword})
	_ = wantConnectError(t, err, engine.ConnectUnreachable)
}

func TestConnectSilentServer(t *testing.T) {
	// Something accepts TCP but never speaks PostgreSQL: the connect
	// timeout ends the wait and the endpoint counts as unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a tcp listener has a *TCPAddr
	start := time.Now()
	_, err = Connect(t.Context(), Config{Host: "127.0.0.1", Port: port, Database: "x", Username: "u", Password: connPassword, SSLMode: "disable", ConnectTimeout: 300 * time.Millisecond})
	_ = wantConnectError(t, err, engine.ConnectUnreachable)
	t.Logf("gave up after %s: %v", time.Since(start).Round(time.Millisecond), err)
}
