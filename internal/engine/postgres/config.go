package postgres

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults applied by PoolConfig to zero-valued Config fields.
const (
	DefaultPort            = 5432
	DefaultConnectTimeout  = 10 * time.Second
	DefaultApplicationName = "terraform-provider-migration"
	// DefaultMaxConns bounds the pool: the catalog reader and the probe need
	// one connection, a copy a few more; a migration must not crowd out the
	// application's own connections on the source.
	DefaultMaxConns = 4
)

// SSLModes lists the accepted sslmode values, for validators.
var SSLModes = []string{"disable", "require", "verify-ca", "verify-full"}

// Config is how to reach one PostgreSQL database.
type Config struct {
	Host     string
	Port     int // DefaultPort when 0
	Database string
	Username string
	// Password may be empty: then pgx's own PGPASSWORD / PGPASSFILE /
	// ~/.pgpass lookup applies.
	Password string
	// SSLMode is one of SSLModes, or empty for pgx's default ("prefer": try
	// TLS without verifying the certificate, fall back to plaintext).
	SSLMode string
	// SSLRootCert is the path of a PEM file with the CA certificates to trust.
	SSLRootCert string
	// ConnectTimeout bounds each connection attempt; DefaultConnectTimeout when 0.
	ConnectTimeout time.Duration
	// ApplicationName shows in pg_stat_activity; DefaultApplicationName when empty.
	ApplicationName string
	// MaxConns bounds the pool; 0 means DefaultMaxConns. A full load needs
	// one connection per worker, plus one holding the snapshot on a source.
	MaxConns int32
}

// PassKey is "user@host:port/database": how the provider's postgres_passwords
// map names the endpoint a password belongs to (the fields of a .pgpass line).
func (c Config) PassKey() string {
	return fmt.Sprintf("%s@%s:%d/%s", c.Username, c.Host, c.port(), c.Database)
}

func (c Config) port() int {
	if c.Port == 0 {
		return DefaultPort
	}
	return c.Port
}

// Target is "host:port/database" for messages; it never contains the password.
func (c Config) Target() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.port())) + "/" + c.Database
}

// PoolConfig builds a pgxpool config. The password never enters the
// connection string (which pgx keeps and callers may log); it is set on the
// parsed config afterwards.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	if strings.TrimSpace(c.Host) == "" {
		return nil, fmt.Errorf("postgres endpoint: host is required")
	}
	if c.port() < 1 || c.port() > 65535 {
		return nil, fmt.Errorf("postgres endpoint %s: port %d is out of range 1-65535", c.Host, c.Port)
	}
	if c.SSLMode != "" && !slices.Contains(SSLModes, c.SSLMode) {
		return nil, fmt.Errorf("postgres endpoint %s: sslmode %q is not one of %s", c.Target(), c.SSLMode, strings.Join(SSLModes, ", "))
	}
	if c.ConnectTimeout < 0 {
		return nil, fmt.Errorf("postgres endpoint %s: connect timeout %s is negative", c.Target(), c.ConnectTimeout)
	}

	appName := c.ApplicationName
	if appName == "" {
		appName = DefaultApplicationName
	}
	parts := []string{
		"host=" + quoteConnValue(c.Host),
		"port=" + strconv.Itoa(c.port()),
		"application_name=" + quoteConnValue(appName),
	}
	if c.Database != "" {
		parts = append(parts, "dbname="+quoteConnValue(c.Database))
	}
	if c.Username != "" {
		parts = append(parts, "user="+quoteConnValue(c.Username))
	}
	if c.SSLMode != "" {
		parts = append(parts, "sslmode="+quoteConnValue(c.SSLMode))
	}
	if c.SSLRootCert != "" {
		parts = append(parts, "sslrootcert="+quoteConnValue(c.SSLRootCert))
	}

	cfg, err := pgxpool.ParseConfig(strings.Join(parts, " "))
	if err != nil {
		return nil, fmt.Errorf("postgres endpoint %s: %w", c.Target(), err)
	}
	if c.Password != "" {
		cfg.ConnConfig.Password = c.Password
	}
	cfg.ConnConfig.ConnectTimeout = c.ConnectTimeout
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	cfg.MaxConns = DefaultMaxConns
	if c.MaxConns > 0 {
		cfg.MaxConns = c.MaxConns
	}
	return cfg, nil
}

// quoteConnValue quotes a keyword/value connection-string value the way
// libpq reads it, so spaces, quotes and backslashes survive.
func quoteConnValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// AmbientPassword reports whether libpq's own password sources are there for
// pgx to use when Config.Password is empty: PGPASSWORD, or a password file
// (PGPASSFILE, else ~/.pgpass).
func AmbientPassword() bool {
	if os.Getenv("PGPASSWORD") != "" {
		return true
	}
	file := os.Getenv("PGPASSFILE")
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return false
		}
		file = filepath.Join(home, ".pgpass")
	}
	st, err := os.Stat(file)
	return err == nil && st.Mode().IsRegular()
}
