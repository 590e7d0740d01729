package testenv

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var testCreds = credentials.NewStaticCredentialsProvider("test", "test", "")

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	began := time.Now()
	pg := StartPostgresT(t, PostgresOptions{ExtraConf: []string{"work_mem = '8MB'"}})
	t.Logf("postgres started on port %d in %v", pg.Port, time.Since(began).Round(time.Millisecond))

	// A quote and a semicolon in the password prove it is sent as a literal.
	const password = "s3cret'; DROP ROLE app; --"
	if err := pg.CreateRole(ctx, "app", password, "REPLICATION"); err != nil {
		t.Fatal(err)
	}
	if err := pg.CreateDatabase(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "shop", `CREATE TABLE orders (id int PRIMARY KEY, note text);
		GRANT SELECT ON orders TO app`); err != nil {
		t.Fatalf("multi-statement exec: %v", err)
	}
	if err := pg.Exec(ctx, "shop", "INSERT INTO orders VALUES ($1, $2)", 1, "first"); err != nil {
		t.Fatalf("exec with args: %v", err)
	}

	conn, err := pgx.Connect(ctx, pg.DSN("app", password, "shop"))
	if err != nil {
		t.Fatalf("connecting with the right password: %v", err)
	}
	defer conn.Close(ctx)
	var note, walLevel, workMem string
	if err := conn.QueryRow(ctx, "SELECT note FROM orders WHERE id = 1").Scan(&note); err != nil || note != "first" {
		t.Fatalf("reading as app: note %q, err %v", note, err)
	}
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil || walLevel != "logical" {
		t.Fatalf("wal_level = %q (err %v), want logical", walLevel, err)
	}
	if err := conn.QueryRow(ctx, "SHOW work_mem").Scan(&workMem); err != nil || workMem != "8MB" {
		t.Fatalf("ExtraConf not applied: work_mem = %q (err %v)", workMem, err)
	}

	_, err = pgx.Connect(ctx, pg.DSN("app", "wrong", "shop"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("connecting with a wrong password: got %v, want SQLSTATE 28P01", err)
	}

	super, err := pgx.Connect(ctx, pg.SuperuserDSN("postgres"))
	if err != nil {
		t.Fatalf("connecting as superuser: %v", err)
	}
	defer super.Close(ctx)
	var scram bool
	if err := super.QueryRow(ctx, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'app'").Scan(&scram); err != nil || !scram {
		t.Fatalf("password stored as SCRAM: %v (err %v)", scram, err)
	}

	// CDC needs a replication connection with the role's password.
	repl, err := pgconn.Connect(ctx, pg.DSN("app", password, "shop")+"&replication=database")
	if err != nil {
		t.Fatalf("replication connection: %v", err)
	}
	defer repl.Close(ctx)
	if _, err := repl.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll(); err != nil {
		t.Fatalf("IDENTIFY_SYSTEM: %v", err)
	}

	if err := pg.CreateRole(ctx, "bad", "x", "LOGIN; DROP DATABASE shop"); err == nil {
		t.Fatal("CreateRole accepted an attribute with a semicolon")
	}
}

func TestPostgresStop(t *testing.T) {
	t.Parallel()
	pg, err := StartPostgres(t.Context(), PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dsn := pg.SuperuserDSN("postgres")
	if err := pg.Stop(); err != nil {
		t.Fatalf("first Stop: %v", err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(pg.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after Stop (stat: %v)", pg.DataDir, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("server still accepts connections after Stop")
	}
}

func TestDynalite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	began := time.Now()
	d := StartDynaliteT(t)
	t.Logf("dynalite started at %s in %v", d.Endpoint, time.Since(began).Round(time.Millisecond))

	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(d.Endpoint),
		Credentials:  testCreds,
	})
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("orders"),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	out, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != "orders" {
		t.Fatalf("ListTables = %v, want [orders]", out.TableNames)
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("orders")})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	if desc.Table.TableStatus != ddbtypes.TableStatusActive {
		t.Fatalf("table status %s right after create, want ACTIVE", desc.Table.TableStatus)
	}

	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	began := time.Now()
	srv := StartS3T(t)
	t.Logf("s3 started at %s in %v", srv.Endpoint, time.Since(began).Round(time.Millisecond))

	if err := srv.CreateBucket(ctx, "exports"); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateBucket(ctx, "Bad_Name"); err == nil {
		t.Fatal("CreateBucket accepted an invalid bucket name")
	}
	if err := srv.PutObject(ctx, "exports", "orders/part-0001.jsonl", []byte(`{"id":1}`+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := srv.PutObject(ctx, "missing", "k", nil); err == nil {
		t.Fatal("PutObject into a missing bucket succeeded")
	}

	client := s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		Credentials:  testCreds,
		UsePathStyle: true,
	})
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("exports"),
		Key:    aws.String("orders/part-0002.jsonl"),
		Body:   strings.NewReader(`{"id":2}` + "\n"),
	}); err != nil {
		t.Fatalf("PutObject through the SDK: %v", err)
	}
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("exports"), Prefix: aws.String("orders/")})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if strings.Join(keys, ",") != "orders/part-0001.jsonl,orders/part-0002.jsonl" {
		t.Fatalf("listed keys %v", keys)
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("exports"), Key: aws.String("orders/part-0001.jsonl")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer got.Body.Close()
	if aws.ToInt64(got.ContentLength) != int64(len(`{"id":1}`+"\n")) {
		t.Fatalf("GetObject length %d", aws.ToInt64(got.ContentLength))
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestPostgresBadConfig(t *testing.T) {
	t.Parallel()
	pg, err := StartPostgres(t.Context(), PostgresOptions{ExtraConf: []string{"no_such_setting = 1"}})
	if err == nil {
		_ = pg.Stop()
		t.Fatal("started with an unknown setting")
	}
	// The log tail in the error is what lets someone fix a broken start.
	if !strings.Contains(err.Error(), "no_such_setting") {
		t.Fatalf("error lacks the log tail: %v", err)
	}
	t.Logf("error as reported: %v", err)
}
