package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPoolConfigDefaults(t *testing.T) {
	const password = "pw-'quoted' \\ and spaced"
	cfg, err := Config{Host: "db.internal", Database: "shop", Username: "migrator", Password: password, SSLMode: "disable"}.PoolConfig()
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	cc := cfg.ConnConfig
	if cc.Host != "db.internal" || cc.Port != 5432 || cc.Database != "shop" || cc.User != "migrator" {
		t.Errorf("host/port/database/user = %s/%d/%s/%s, want db.internal/5432/shop/migrator", cc.Host, cc.Port, cc.Database, cc.User)
	}
	if cc.Password != password {
		t.Errorf("ConnConfig.Password = %q, want the configured password", cc.Password)
	}
	if strings.Contains(cfg.ConnString(), "pw-") || strings.Contains(cc.ConnString(), "pw-") || strings.Contains(cfg.ConnString(), "password") {
		t.Errorf("connection string carries the password: %q", cfg.ConnString())
	}
	if cc.ConnectTimeout != 10*time.Second {
		t.Errorf("ConnectTimeout = %s, want 10s", cc.ConnectTimeout)
	}
	if got := cc.RuntimeParams["application_name"]; got != "terraform-provider-migration" {
		t.Errorf("application_name = %q, want terraform-provider-migration", got)
	}
	if cfg.MaxConns != 4 {
		t.Errorf("MaxConns = %d, want 4", cfg.MaxConns)
	}
	if cc.TLSConfig != nil || len(cc.Fallbacks) != 0 {
		t.Errorf("sslmode=disable must not try TLS (TLSConfig %v, %d fallbacks)", cc.TLSConfig, len(cc.Fallbacks))
	}
}

func TestPoolConfigOverrides(t *testing.T) {
	cfg, err := Config{
		Host: "10.0.0.7", Port: 6543, Database: `we'ird \db name`, Username: "u s'er",
		SSLMode: "require", ConnectTimeout: 3 * time.Second, ApplicationName: "nightly copy",
	}.PoolConfig()
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	cc := cfg.ConnConfig
	if cc.Port != 6543 || cc.Database != `we'ird \db name` || cc.User != "u s'er" {
		t.Errorf("port/database/user = %d/%q/%q: quoting lost something", cc.Port, cc.Database, cc.User)
	}
	if cc.ConnectTimeout != 3*time.Second || cc.RuntimeParams["application_name"] != "nightly copy" {
		t.Errorf("timeout %s, application_name %q", cc.ConnectTimeout, cc.RuntimeParams["application_name"])
	}
	// require: TLS and no plaintext fallback.
	if cc.TLSConfig == nil || len(cc.Fallbacks) != 0 {
		t.Errorf("sslmode=require: TLSConfig %v, %d fallbacks; want TLS only", cc.TLSConfig, len(cc.Fallbacks))
	}
}

func TestPoolConfigEmptySSLModeIsPrefer(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	cfg, err := Config{Host: "db.internal", Database: "shop", Username: "u"}.PoolConfig()
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	// prefer: TLS first, then one plaintext fallback.
	cc := cfg.ConnConfig
	if cc.TLSConfig == nil || len(cc.Fallbacks) != 1 || cc.Fallbacks[0].TLSConfig != nil {
		t.Errorf("empty sslmode: TLSConfig %v, fallbacks %d; want TLS then plaintext", cc.TLSConfig, len(cc.Fallbacks))
	}
}

func TestPoolConfigRejects(t *testing.T) {
	for name, c := range map[string]Config{
		"no host":       {Database: "shop"},
		"bad sslmode":   {Host: "h", SSLMode: "prefer"},
		"bad port":      {Host: "h", Port: 70000},
		"negative time": {Host: "h", ConnectTimeout: -time.Second},
	} {
		if _, err := c.PoolConfig(); err == nil {
			t.Errorf("%s: PoolConfig succeeded, want an error", name)
		}
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Host: "db", Database: "shop", Password: "secret"}, "db:5432/shop"},
		{Config{Host: "db", Port: 6000, Database: "x"}, "db:6000/x"},
		{Config{Host: "::1", Database: "x"}, "[::1]:5432/x"},
	} {
		if got := tc.cfg.Target(); got != tc.want {
			t.Errorf("Target() = %q, want %q", got, tc.want)
		}
	}
}

func TestQuoteConnValue(t *testing.T) {
	for _, v := range []string{"plain", "with space", `it's`, `back\slash`, `\'`, ""} {
		cfg, err := pgconn.ParseConfig("host=h dbname=" + quoteConnValue(v))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if cfg.Database != v {
			t.Errorf("quoted %q parsed back as %q", v, cfg.Database)
		}
	}
}

func TestAmbientPassword(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", "")
	if AmbientPassword() {
		t.Fatal("no PGPASSWORD and no ~/.pgpass, yet AmbientPassword() is true")
	}
	t.Setenv("PGPASSWORD", "x")
	if !AmbientPassword() {
		t.Fatal("PGPASSWORD is set, yet AmbientPassword() is false")
	}
	t.Setenv("PGPASSWORD", "")
	if err := os.WriteFile(filepath.Join(dir, ".pgpass"), []byte("*:*:*:*:x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !AmbientPassword() {
		t.Fatal("~/.pgpass exists, yet AmbientPassword() is false")
	}
	t.Setenv("PGPASSFILE", filepath.Join(dir, "missing"))
	if AmbientPassword() {
		t.Fatal("PGPASSFILE names a missing file, yet AmbientPassword() is true")
	}
}
