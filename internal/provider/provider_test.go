package provider

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// testAccProtoV6ProviderFactories runs the provider in the test process; each
// terraform command gets a fresh provider instance, as a real process would.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"migration": providerserver.NewProtocol6WithError(New("test")()),
}

// Servers shared by the package's tests, started on first use and stopped
// by TestMain.
var shared struct {
	mu       sync.Mutex
	pg       *testenv.Postgres
	cdcSrc   *testenv.Postgres
	dynalite *testenv.Dynalite
	s3       *testenv.S3Server
}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	for _, pg := range []*testenv.Postgres{shared.pg, shared.cdcSrc} {
		if pg != nil {
			_ = pg.Stop()
		}
	}
	if shared.dynalite != nil {
		_ = shared.dynalite.Stop()
	}
	if shared.s3 != nil {
		_ = shared.s3.Stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

func skipUnlessAcc(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test does)")
	}
}

func sharedPostgres(t *testing.T) *testenv.Postgres {
	t.Helper()
	return sharedCluster(t, &shared.pg)
}

// sharedCDCSource is a second cluster for change data capture sources: the
// targets' writes on the first then add no WAL behind the sources' slots,
// as with separate servers in production.
func sharedCDCSource(t *testing.T) *testenv.Postgres {
	t.Helper()
	return sharedCluster(t, &shared.cdcSrc)
}

// sharedCluster starts the cluster *pg on first use.
func sharedCluster(t *testing.T, pg **testenv.Postgres) *testenv.Postgres {
	t.Helper()
	skipUnlessAcc(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if *pg == nil {
		started, err := testenv.StartPostgres(context.Background(), testenv.PostgresOptions{})
		if err != nil {
			t.Fatalf("starting PostgreSQL: %v", err)
		}
		*pg = started
	}
	return *pg
}

func sharedDynalite(t *testing.T) *testenv.Dynalite {
	t.Helper()
	skipUnlessAcc(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.dynalite == nil {
		d, err := testenv.StartDynalite(context.Background())
		if err != nil {
			t.Fatalf("starting dynalite: %v", err)
		}
		shared.dynalite = d
	}
	return shared.dynalite
}

func sharedS3(t *testing.T) *testenv.S3Server {
	t.Helper()
	skipUnlessAcc(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s3 == nil {
		s, err := testenv.StartS3(context.Background())
		if err != nil {
			t.Fatalf("starting the S3 server: %v", err)
		}
		shared.s3 = s
	}
	return shared.s3
}

// awsTestCredentials makes the standard AWS chain find static test keys.
func awsTestCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// closedPort returns a loopback port with nothing listening on it.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", l.Addr())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr.Port
}

// newDatabase creates a database with a password-protected owner role and
// returns their names.
func newDatabase(t *testing.T, pg *testenv.Postgres, name, password string, roleAttrs ...string) (db, role string) {
	t.Helper()
	ctx := context.Background()
	role = name + "_user"
	if err := pg.CreateRole(ctx, role, password, roleAttrs...); err != nil {
		t.Fatalf("creating role: %v", err)
	}
	if err := pg.CreateDatabase(ctx, name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	if err := pg.Exec(ctx, name, fmt.Sprintf(`GRANT ALL ON SCHEMA public TO %q; ALTER DATABASE %q OWNER TO %q`, role, name, role)); err != nil {
		t.Fatalf("granting: %v", err)
	}
	return name, role
}
