package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	pgSuperuser    = "postgres"
	pgStartTimeout = 30 * time.Second
	pgStopTimeout  = 30 * time.Second
	pgStartTries   = 5
	logTailBytes   = 4000
)

// PostgresOptions tunes a cluster started by StartPostgres.
type PostgresOptions struct {
	// Extra lines appended to postgresql.conf.
	ExtraConf []string
}

// Postgres is a running throwaway PostgreSQL cluster.
type Postgres struct {
	Host    string // "127.0.0.1"
	Port    int
	DataDir string

	tmpRoot string              // the temp dir holding DataDir; removed by Stop
	cred    *syscall.Credential // whom the server runs as; nil for the current user
	proc    *child

	stopOnce sync.Once
	stopErr  error
}

// StartPostgres creates a fresh cluster in a temp dir and starts it on a free
// loopback port. The caller must call Stop.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := pgBinDir(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	tmpRoot, err := os.MkdirTemp(tempRoot(cred), "testenv-pg-")
	if err != nil {
		return nil, fmt.Errorf("creating postgres temp dir: %w", err)
	}
	p := &Postgres{
		Host:    "127.0.0.1",
		DataDir: filepath.Join(tmpRoot, "data"),
		tmpRoot: tmpRoot,
		cred:    cred,
	}
	if err := p.start(ctx, bin, opts); err != nil {
		return nil, errors.Join(err, p.Stop())
	}
	return p, nil
}

// StartPostgresT starts a cluster for t and stops it when t ends. Failing to
// start is a test failure, never a skip: a missing server must not pass CI.
func StartPostgresT(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	p, err := StartPostgres(t.Context(), opts)
	if err != nil {
		t.Fatalf("starting postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping postgres: %v", err)
		}
	})
	return p
}

func (p *Postgres) start(ctx context.Context, bin string, opts PostgresOptions) error {
	if p.cred != nil {
		if err := os.Chown(p.tmpRoot, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("handing %s to uid %d: %w", p.tmpRoot, p.cred.Uid, err)
		}
	}
	if err := p.initdb(ctx, bin); err != nil {
		return err
	}
	if err := p.writeConfig(opts); err != nil {
		return err
	}
	logPath := filepath.Join(p.DataDir, "log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening postgres log: %w", err)
	}
	// The child holds its own copy of the descriptor.
	defer func() { _ = logFile.Close() }()
	if p.cred != nil {
		if err := os.Chown(logPath, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("handing postgres log to uid %d: %w", p.cred.Uid, err)
		}
	}

	var lastErr error
	for range pgStartTries {
		port, err := freePort()
		if err != nil {
			return err
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", p.DataDir, "-p", strconv.Itoa(port))
		cmd.Dir = p.tmpRoot
		cmd.Stdout = logFile
		cmd.Stderr = logFile
		// SIGQUIT is postgres's immediate shutdown: it also takes the
		// backends down if the test binary dies without calling Stop.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGQUIT}
		proc, err := startChild(cmd)
		if err != nil {
			return fmt.Errorf("starting %s: %w", cmd.Path, err)
		}
		p.proc, p.Port = proc, port
		err = p.waitReady(ctx, logPath)
		if err == nil {
			return nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			return err
		}
		// Another process took the port between freePort and bind.
		if err := proc.stop(syscall.SIGKILL, 0); err != nil {
			return err
		}
	}
	return fmt.Errorf("starting postgres after %d tries: %w", pgStartTries, lastErr)
}

var errPortInUse = errors.New("port already in use")

func (p *Postgres) waitReady(ctx context.Context, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, pgStartTimeout)
	defer cancel()
	for {
		if p.proc.hasExited() {
			log := fileTail(logPath, logTailBytes)
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("postgres on port %d: %w", p.Port, errPortInUse)
			}
			return fmt.Errorf("postgres exited during startup (%v); log tail:\n%s", p.proc.err, log)
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(attempt, p.SuperuserDSN("postgres"))
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres on port %d not accepting connections: %w (last error: %v); log tail:\n%s",
				p.Port, ctx.Err(), err, fileTail(logPath, logTailBytes))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Postgres) initdb(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", p.DataDir,
		"-U", pgSuperuser,
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
		"-E", "UTF8",
		"--locale=C",
		// A throwaway cluster needs no fsync; this saves about a second.
		"--no-sync",
	)
	// initdb resolves its own path and cwd; the unprivileged user must be
	// able to reach the cwd.
	cmd.Dir = p.tmpRoot
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("running initdb for %s: %w\n%s", p.DataDir, err, tail(string(out), logTailBytes))
	}
	return nil
}

func (p *Postgres) writeConfig(opts PostgresOptions) error {
	conf := []string{
		"",
		"# testenv",
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + strings.ReplaceAll(p.DataDir, "'", "''") + "'",
		"wal_level = logical",
		"max_replication_slots = 20",
		"max_wal_senders = 20",
		"max_connections = 100",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
	}
	conf = append(conf, opts.ExtraConf...)
	f, err := os.OpenFile(filepath.Join(p.DataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(strings.Join(conf, "\n") + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}

	// Only the superuser is trusted over TCP; every other role must present
	// its password, so tests of wrong passwords mean something.
	hba := strings.Join([]string{
		"local all all trust",
		"host all postgres 127.0.0.1/32 trust",
		"host all all 127.0.0.1/32 scram-sha-256",
		"host replication postgres 127.0.0.1/32 trust",
		"host replication all 127.0.0.1/32 scram-sha-256",
	}, "\n") + "\n"
	// Overwriting keeps the owner and mode initdb gave the file.
	if err := os.WriteFile(filepath.Join(p.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 30 s) and
// removes its data dir. It is safe to call more than once.
func (p *Postgres) Stop() error {
	p.stopOnce.Do(func() {
		var errs []error
		if p.proc != nil {
			// SIGINT is "fast" shutdown: abort transactions, checkpoint, exit.
			if err := p.proc.stop(syscall.SIGINT, pgStopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("stopping postgres on port %d: %w", p.Port, err))
			}
		}
		if err := os.RemoveAll(p.tmpRoot); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", p.tmpRoot, err))
		}
		p.stopErr = errors.Join(errs...)
	})
	return p.stopErr
}

// DSN is a URL for user on database; the password may be empty.
func (p *Postgres) DSN(user, password, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	if password == "" {
		u.User = url.User(user)
	}
	return u.String()
}

// SuperuserDSN connects as "postgres" without a password (trusted from
// 127.0.0.1).
func (p *Postgres) SuperuserDSN(database string) string {
	return p.DSN(pgSuperuser, "", database)
}

// Exec runs sql as the superuser on database over one short-lived
// connection. Without args, sql may hold several statements.
func (p *Postgres) Exec(ctx context.Context, database, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, p.SuperuserDSN(database))
	if err != nil {
		return fmt.Errorf("connecting to database %q on port %d: %w", database, p.Port, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if len(args) == 0 {
		// The simple protocol accepts several statements in one string.
		if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
			return fmt.Errorf("executing on database %q: %w", database, err)
		}
		return nil
	}
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("executing on database %q: %w", database, err)
	}
	return nil
}

// CreateDatabase creates an empty database owned by the superuser.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) error {
	if err := p.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %q: %w", name, err)
	}
	return nil
}

// roleAttr admits keyword attributes such as "REPLICATION", "CREATEDB" or
// "CONNECTION LIMIT 5" and nothing that could end the statement.
var roleAttr = regexp.MustCompile(`^[A-Za-z]+( [A-Za-z0-9]+)*$`)

// CreateRole creates a LOGIN role with password (stored as SCRAM) and extra
// attributes like "REPLICATION" or "SUPERUSER".
func (p *Postgres) CreateRole(ctx context.Context, name, password string, attrs ...string) error {
	for _, a := range attrs {
		if !roleAttr.MatchString(a) {
			return fmt.Errorf("creating role %q: invalid attribute %q", name, a)
		}
	}
	conn, err := pgx.Connect(ctx, p.SuperuserDSN("postgres"))
	if err != nil {
		return fmt.Errorf("creating role %q: connecting on port %d: %w", name, p.Port, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	stmt := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " WITH LOGIN"
	for _, a := range attrs {
		stmt += " " + a
	}
	if password != "" {
		// CREATE ROLE takes no bind parameters, so let the server quote
		// the literal rather than escaping it here.
		var lit string
		if err := conn.QueryRow(ctx, "SELECT quote_literal($1::text)", password).Scan(&lit); err != nil {
			return fmt.Errorf("creating role %q: quoting password: %w", name, err)
		}
		stmt += " PASSWORD " + lit
	}
	// Pin SCRAM whatever ExtraConf says, so clients authenticate as in production.
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return fmt.Errorf("creating role %q: %w", name, err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("creating role %q: %w", name, err)
	}
	return nil
}

// pgBinDir is $PGBIN, else `pg_config --bindir`.
func pgBinDir(ctx context.Context) (string, error) {
	if dir := os.Getenv("PGBIN"); dir != "" {
		return dir, nil
	}
	out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return "", fmt.Errorf("finding postgres binaries with pg_config --bindir (set PGBIN to override): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// serverCredential is whom initdb and postgres run as: nil (ourselves)
// unless we are root, which initdb and postgres refuse, then "nobody".
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, looking up user nobody to run postgres as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing uid %q of nobody: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid %q of nobody: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tempRoot is os.TempDir, unless the server's user could not reach it (a
// root-only TMPDIR), then /tmp.
func tempRoot(cred *syscall.Credential) string {
	dir := os.TempDir()
	if cred == nil {
		return dir
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return dir
		}
	}
}
