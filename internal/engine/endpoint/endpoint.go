// Package endpoint owns an endpoint's connection spec and its id: a
// canonical, secret-free URL that names the engine and every connection
// setting except the password, so that `terraform import` can rebuild an
// endpoint from its id alone and two runs of Terraform agree on it.
//
//	postgres://migrator@db.internal:5432/shop?connect_timeout=10&sslmode=verify-full
//	dynamodb://eu-west-1?endpoint_url=http%3A%2F%2F127.0.0.1%3A8000
//	s3://archive/shop/?compression=gzip&format=jsonl&region=eu-west-1
//	file:///var/lib/archive/?compression=none&format=csv
package endpoint

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/dynamodb"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

// Kind is an endpoint's engine.
type Kind string

// The engines an endpoint can name.
const (
	KindPostgres Kind = "postgres"
	KindDynamoDB Kind = "dynamodb"
	KindS3       Kind = "s3"
)

// Spec is a complete endpoint: exactly one of the engine configs is set.
// The PostgreSQL password may be empty; it is never part of the id.
type Spec struct {
	Postgres *postgres.Config
	DynamoDB *dynamodb.Config
	S3       *s3.Config
}

// Kind says which engine the spec names.
func (s Spec) Kind() Kind {
	switch {
	case s.Postgres != nil:
		return KindPostgres
	case s.DynamoDB != nil:
		return KindDynamoDB
	default:
		return KindS3
	}
}

// ID renders the canonical id. Query parameters are sorted (url.Values.Encode)
// and empty ones left out, so equal specs always give equal ids.
func (s Spec) ID() string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	switch s.Kind() {
	case KindPostgres:
		c := s.Postgres
		set("sslmode", c.SSLMode)
		set("sslrootcert", c.SSLRootCert)
		if c.ConnectTimeout > 0 {
			set("connect_timeout", strconv.Itoa(int(c.ConnectTimeout/time.Second)))
		}
		u := url.URL{
			Scheme:   "postgres",
			User:     url.User(c.Username),
			Host:     fmt.Sprintf("%s:%d", hostForURL(c.Host), c.Port),
			Path:     "/" + c.Database,
			RawQuery: q.Encode(),
		}
		return u.String()
	case KindDynamoDB:
		c := s.DynamoDB
		set("endpoint_url", c.EndpointURL)
		set("profile", c.Profile)
		set("role_arn", c.RoleARN)
		u := url.URL{Scheme: "dynamodb", Host: c.Region, RawQuery: q.Encode()}
		return u.String()
	default:
		c := s.S3
		set("region", c.Region)
		set("endpoint_url", c.EndpointURL)
		if c.ForcePathStyle {
			set("force_path_style", "true")
		}
		set("format", c.Format)
		set("compression", c.Compression)
		if enc := q.Encode(); enc != "" {
			return c.URL + "?" + enc
		}
		return c.URL
	}
}

// hostForURL brackets IPv6 literals.
func hostForURL(h string) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return "[" + h + "]"
	}
	return h
}

// ParseID rebuilds a Spec from an id made by ID. Errors say which part is wrong.
func ParseID(id string) (Spec, error) {
	u, err := url.Parse(id)
	if err != nil {
		return Spec{}, fmt.Errorf("endpoint id %q is not a URL: %w", id, err)
	}
	q := u.Query()
	switch u.Scheme {
	case "postgres", "postgresql":
		if u.User == nil || u.User.Username() == "" {
			return Spec{}, fmt.Errorf("endpoint id %q names no user: expected postgres://USER@HOST:PORT/DATABASE", id)
		}
		if _, has := u.User.Password(); has {
			return Spec{}, fmt.Errorf("endpoint id must not contain a password: set password_wo in the configuration instead")
		}
		port := 5432
		if p := u.Port(); p != "" {
			port, err = strconv.Atoi(p)
			if err != nil || port < 1 || port > 65535 {
				return Spec{}, fmt.Errorf("endpoint id %q has an invalid port %q", id, p)
			}
		}
		db := strings.TrimPrefix(u.Path, "/")
		if u.Hostname() == "" || db == "" {
			return Spec{}, fmt.Errorf("endpoint id %q needs a host and a database: expected postgres://USER@HOST:PORT/DATABASE", id)
		}
		c := &postgres.Config{
			Host: u.Hostname(), Port: port, Database: db, Username: u.User.Username(),
			SSLMode: q.Get("sslmode"), SSLRootCert: q.Get("sslrootcert"),
		}
		if ct := q.Get("connect_timeout"); ct != "" {
			n, err := strconv.Atoi(ct)
			if err != nil || n < 0 {
				return Spec{}, fmt.Errorf("endpoint id %q has an invalid connect_timeout %q", id, ct)
			}
			c.ConnectTimeout = time.Duration(n) * time.Second
		}
		return Spec{Postgres: c}, nil
	case "dynamodb":
		if u.Host == "" {
			return Spec{}, fmt.Errorf("endpoint id %q names no region: expected dynamodb://REGION", id)
		}
		return Spec{DynamoDB: &dynamodb.Config{
			Region: u.Host, EndpointURL: q.Get("endpoint_url"), Profile: q.Get("profile"), RoleARN: q.Get("role_arn"),
		}}, nil
	case "s3", "file":
		base := id
		if i := strings.IndexByte(base, '?'); i >= 0 {
			base = base[:i]
		}
		if _, err := s3.ParseURL(base); err != nil {
			return Spec{}, fmt.Errorf("endpoint id %q: %w", id, err)
		}
		return Spec{S3: &s3.Config{
			URL: base, Region: q.Get("region"), EndpointURL: q.Get("endpoint_url"),
			ForcePathStyle: q.Get("force_path_style") == "true",
			Format:         q.Get("format"), Compression: q.Get("compression"),
		}}, nil
	default:
		return Spec{}, fmt.Errorf("endpoint id %q has an unknown scheme %q: expected postgres://, dynamodb://, s3:// or file://", id, u.Scheme)
	}
}
