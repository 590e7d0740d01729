package s3_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/awsconf/awstest"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

func open(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	st, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	// Registered after the server's cleanup, so it runs first: the server
	// then has no idle connection of ours to wait for when it stops.
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing %s: %v", st.Target(), err)
		}
	})
	return st
}

func s3Config(srv *testenv.S3Server, url string) s3.Config {
	return s3.Config{URL: url, Region: srv.Region, EndpointURL: srv.Endpoint, ForcePathStyle: true}
}

func wantConnectError(t *testing.T, err error, kind engine.ConnectErrorKind) *engine.ConnectError {
	t.Helper()
	ce, ok := engine.AsConnectError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a ConnectError", err, err)
	}
	if ce.Kind != kind {
		t.Fatalf("Kind = %v, want %v (err: %v, hint: %s)", ce.Kind, kind, err, ce.Hint)
	}
	t.Logf("%v\n\thint: %s", err, ce.Hint)
	return ce
}

func TestBucketProbeAndCatalog(t *testing.T) {
	awstest.Isolate(t, true)
	srv := testenv.StartS3T(t)
	ctx := t.Context()
	if err := srv.CreateBucket(ctx, "archive"); err != nil {
		t.Fatal(err)
	}
	for key, size := range map[string]int{
		"shop/customers/part-0001.jsonl":      10,
		"shop/customers/part-0002.jsonl":      20,
		"shop/customers/2024/01/part.jsonl":   5, // nested: counted under customers/
		"shop/orders/part-0001.jsonl":         7,
		"shop/orders/_checkpoints/chunk-0001": 1,
		"shop/README":                         3, // at the url's level
		"shop/":                               0, // console folder marker: not an object of data
		"shopping/x.jsonl":                    100,
		"other/y.jsonl":                       100,
		"root.txt":                            100,
	} {
		if err := srv.PutObject(ctx, "archive", key, []byte(strings.Repeat("x", size))); err != nil {
			t.Fatal(err)
		}
	}
	st := open(t, s3Config(srv, "s3://archive/shop/"))
	if want := "s3://archive/shop/ at " + srv.Endpoint + " (us-east-1)"; st.Target() != want {
		t.Errorf("Target() = %q, want %q", st.Target(), want)
	}

	facts, err := st.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if want := (s3.Facts{Kind: "s3", Objects: 6}); facts != want {
		t.Errorf("Probe = %+v, want %+v", facts, want)
	}

	cat, err := st.ReadCatalog(ctx)
	if err != nil {
		t.Fatalf("ReadCatalog: %v", err)
	}
	want := &catalog.Catalog{Engine: "s3", Prefixes: []catalog.Prefix{
		{Prefix: "", Objects: 1, Bytes: 3},
		{Prefix: "customers/", Objects: 3, Bytes: 35},
		{Prefix: "orders/", Objects: 2, Bytes: 8},
	}}
	if !reflect.DeepEqual(cat, want) {
		t.Errorf("ReadCatalog =\n%+v\nwant\n%+v", cat, want)
	}

	// Without a prefix: the bucket's top-level prefixes.
	cat, err = open(t, s3Config(srv, "s3://archive")).ReadCatalog(ctx)
	if err != nil {
		t.Fatalf("ReadCatalog of the bucket: %v", err)
	}
	want = &catalog.Catalog{Engine: "s3", Prefixes: []catalog.Prefix{
		{Prefix: "", Objects: 1, Bytes: 100},
		{Prefix: "other/", Objects: 1, Bytes: 100},
		{Prefix: "shop/", Objects: 6, Bytes: 46},
		{Prefix: "shopping/", Objects: 1, Bytes: 100},
	}}
	if !reflect.DeepEqual(cat, want) {
		t.Errorf("ReadCatalog of the bucket =\n%+v\nwant\n%+v", cat, want)
	}
}

// More keys than one ListObjectsV2 page (1000), in the probe's count, the
// top-level listing and a recursive sum.
func TestBucketCatalogPaginates(t *testing.T) {
	awstest.Isolate(t, true)
	srv := testenv.StartS3T(t)
	ctx := t.Context()
	if err := srv.CreateBucket(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	const tables, perTable = 1003, 2
	for i := range tables {
		for j := range perTable {
			if err := srv.PutObject(ctx, "big", fmt.Sprintf("t%04d/part-%d", i, j), []byte("abcd")); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := open(t, s3Config(srv, "s3://big/"))
	facts, err := st.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if facts.Objects != tables*perTable || facts.Truncated {
		t.Errorf("Probe = %+v, want %d objects, not truncated", facts, tables*perTable)
	}
	cat, err := st.ReadCatalog(ctx)
	if err != nil {
		t.Fatalf("ReadCatalog: %v", err)
	}
	if len(cat.Prefixes) != tables {
		t.Fatalf("got %d prefixes, want %d", len(cat.Prefixes), tables)
	}
	for i, p := range cat.Prefixes {
		if want := (catalog.Prefix{Prefix: fmt.Sprintf("t%04d/", i), Objects: perTable, Bytes: 4 * perTable}); p != want {
			t.Fatalf("prefix %d = %+v, want %+v", i, p, want)
		}
	}
}

func TestBucketMissing(t *testing.T) {
	awstest.Isolate(t, true)
	srv := testenv.StartS3T(t)
	st := open(t, s3Config(srv, "s3://nosuchbucket/shop/"))
	_, err := st.Probe(t.Context())
	ce := wantConnectError(t, err, engine.ConnectDatabaseMissing)
	if !strings.Contains(err.Error(), "bucket nosuchbucket does not exist") {
		t.Errorf("error %q does not say the bucket does not exist", err)
	}
	if !strings.Contains(ce.Hint, "create the bucket") {
		t.Errorf("Hint %q does not say to create the bucket", ce.Hint)
	}
	_, err = st.ReadCatalog(t.Context())
	_ = wantConnectError(t, err, engine.ConnectDatabaseMissing)
}

func TestBucketUnreachable(t *testing.T) {
	awstest.Isolate(t, true)
	endpoint := awstest.ClosedEndpoint(t)
	st := open(t, s3.Config{URL: "s3://archive/", Region: "eu-west-1", EndpointURL: endpoint, ForcePathStyle: true})
	_, err := st.Probe(t.Context())
	ce := wantConnectError(t, err, engine.ConnectUnreachable)
	if !strings.Contains(ce.Hint, endpoint) || !strings.Contains(ce.Target, endpoint) {
		t.Errorf("Target %q / Hint %q do not name the endpoint %s", ce.Target, ce.Hint, endpoint)
	}
}

func TestBucketNoCredentials(t *testing.T) {
	awstest.Isolate(t, false)
	srv := testenv.StartS3T(t)
	if err := srv.CreateBucket(t.Context(), "archive"); err != nil {
		t.Fatal(err)
	}
	_, err := open(t, s3Config(srv, "s3://archive/")).Probe(t.Context())
	ce := wantConnectError(t, err, engine.ConnectAuthFailed)
	if !strings.Contains(ce.Hint, "AWS_ACCESS_KEY_ID") {
		t.Errorf("Hint %q does not point at the credential chain", ce.Hint)
	}
}

func TestOpenRegion(t *testing.T) {
	awstest.Isolate(t, true)
	// The chain's region is used when the config leaves it out.
	t.Setenv("AWS_REGION", "eu-central-1")
	if got := open(t, s3.Config{URL: "s3://archive/"}).Target(); got != "s3://archive/ (eu-central-1)" {
		t.Errorf("Target() = %q, want the chain's region", got)
	}
	t.Setenv("AWS_REGION", "")
	if _, err := s3.Open(t.Context(), s3.Config{URL: "s3://archive/"}); err == nil || !strings.Contains(err.Error(), "no region") {
		t.Errorf("Open without any region: err = %v, want 'no region'", err)
	}
	// A compatible server still gets a region to sign with.
	if got := open(t, s3.Config{URL: "s3://archive/", EndpointURL: "http://127.0.0.1:9"}).Target(); got != "s3://archive/ at http://127.0.0.1:9 (us-east-1)" {
		t.Errorf("Target() = %q", got)
	}
}

func TestOpenValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  s3.Config
		want string
	}{
		{s3.Config{URL: "file:///x/", Format: "avro"}, `file:///x/: format "avro" is not supported; use one of ["jsonl" "csv" "parquet"]`},
		{s3.Config{URL: "file:///x/", Compression: "lz4"}, `file:///x/: compression "lz4" is not supported; use one of ["none" "gzip" "zstd"]`},
		{s3.Config{URL: "ftp://x/"}, `invalid url "ftp://x/": scheme "ftp" is not supported; use s3://bucket[/prefix/] or file:///absolute/dir/`},
	} {
		_, err := s3.Open(t.Context(), tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Open(%+v) error = %v, want %s", tc.cfg, err, tc.want)
		}
	}
	for _, f := range s3.Formats {
		for _, c := range s3.Compressions {
			if _, err := s3.Open(t.Context(), s3.Config{URL: "file:///x/", Format: f, Compression: c}); err != nil {
				t.Errorf("Open with format %s compression %s: %v", f, c, err)
			}
		}
	}
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Repeat("x", size)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDirProbeAndCatalog(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "customers", "part-0001.jsonl"), 10)
	writeFile(t, filepath.Join(dir, "customers", "part-0002.jsonl"), 20)
	writeFile(t, filepath.Join(dir, "customers", "2024", "01", "part.jsonl"), 5)
	writeFile(t, filepath.Join(dir, "orders", "part-0001.jsonl"), 7)
	writeFile(t, filepath.Join(dir, "README"), 3)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A table directory kept elsewhere and linked in is followed.
	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, "part-0001.jsonl"), 11)
	if err := os.Symlink(elsewhere, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}

	st := open(t, s3.Config{URL: "file://" + dir + "/"})
	if want := "file://" + dir + "/"; st.Target() != want {
		t.Errorf("Target() = %q, want %q", st.Target(), want)
	}
	facts, err := st.Probe(t.Context())
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if want := (s3.Facts{Kind: "file", Objects: 5}); facts != want {
		t.Errorf("Probe = %+v, want %+v", facts, want)
	}
	// The probe's write test leaves nothing behind.
	if entries, _ := os.ReadDir(dir); len(entries) != 5 {
		t.Errorf("directory has %d entries after Probe, want 5", len(entries))
	}

	cat, err := st.ReadCatalog(t.Context())
	if err != nil {
		t.Fatalf("ReadCatalog: %v", err)
	}
	want := &catalog.Catalog{Engine: "s3", Prefixes: []catalog.Prefix{
		{Prefix: "", Objects: 1, Bytes: 3},
		{Prefix: "customers/", Objects: 3, Bytes: 35},
		{Prefix: "empty/", Objects: 0, Bytes: 0},
		{Prefix: "linked/", Objects: 1, Bytes: 11},
		{Prefix: "orders/", Objects: 1, Bytes: 7},
	}}
	if !reflect.DeepEqual(cat, want) {
		t.Errorf("ReadCatalog =\n%+v\nwant\n%+v", cat, want)
	}
}

func TestDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	st := open(t, s3.Config{URL: "file://" + dir})
	_, err := st.Probe(t.Context())
	ce := wantConnectError(t, err, engine.ConnectDatabaseMissing)
	if !strings.Contains(ce.Hint, "create it") || !strings.Contains(ce.Hint, dir) {
		t.Errorf("Hint %q does not say to create %s", ce.Hint, dir)
	}
	if !strings.Contains(err.Error(), "directory "+dir+" does not exist") {
		t.Errorf("error %q does not name the missing directory", err)
	}
	_, err = st.ReadCatalog(t.Context())
	_ = wantConnectError(t, err, engine.ConnectDatabaseMissing)
}

func TestDirNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	writeFile(t, file, 1)
	_, err := open(t, s3.Config{URL: "file://" + file}).Probe(t.Context())
	ce := wantConnectError(t, err, engine.ConnectOther)
	if !strings.Contains(err.Error(), "is not a directory") || ce.Hint == "" {
		t.Errorf("error %q (hint %q) does not say it is not a directory", err, ce.Hint)
	}
}

func TestDirNotWritable(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// Mode bits do not stop root; an immutable directory does.
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Skipf("running as root and cannot make %s immutable: %v %s", dir, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
				t.Errorf("chattr -i %s: %v %s", dir, err, out)
			}
		})
	} else {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	_, err := open(t, s3.Config{URL: "file://" + dir}).Probe(t.Context())
	ce := wantConnectError(t, err, engine.ConnectPermission)
	if !strings.Contains(ce.Hint, dir) {
		t.Errorf("Hint %q does not name %s", ce.Hint, dir)
	}
}
