package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Server is an in-process S3 API (gofakes3, in memory) on a loopback port.
// Clients must use path-style addressing.
type S3Server struct {
	Endpoint string // "http://127.0.0.1:PORT"
	Region   string // "us-east-1"

	backend  *s3mem.Backend
	srv      *http.Server
	served   chan error
	stopOnce sync.Once
	stopErr  error
}

// StartS3 serves a fresh, empty S3 on a free loopback port. The caller must
// call Stop.
func StartS3(ctx context.Context) (*S3Server, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting s3: listening on 127.0.0.1: %w", err)
	}
	backend := s3mem.New()
	faker := gofakes3.New(backend)
	s := &S3Server{
		Endpoint: "http://" + l.Addr().String(),
		Region:   "us-east-1",
		backend:  backend,
		srv:      &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second},
		served:   make(chan error, 1),
	}
	go func() { s.served <- s.srv.Serve(l) }()
	return s, nil
}

// StartS3T starts an S3 server for t and stops it when t ends.
func StartS3T(t testing.TB) *S3Server {
	t.Helper()
	s, err := StartS3(t.Context())
	if err != nil {
		t.Fatalf("starting s3: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping s3: %v", err)
		}
	})
	return s
}

// CreateBucket creates an empty bucket, checking the name as S3 would.
func (s *S3Server) CreateBucket(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("creating bucket %q: %w", name, err)
	}
	// The backend trusts its caller; the HTTP layer normally validates.
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return fmt.Errorf("creating bucket %q: %w", name, err)
	}
	if err := s.backend.CreateBucket(name); err != nil {
		return fmt.Errorf("creating bucket %q: %w", name, err)
	}
	return nil
}

// PutObject stores body at bucket/key, replacing what was there.
func (s *S3Server) PutObject(ctx context.Context, bucket, key string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("putting s3://%s/%s: %w", bucket, key, err)
	}
	if _, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		return fmt.Errorf("putting s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// Stop closes the server and drops its contents. It is safe to call more
// than once.
func (s *S3Server) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// Idle keep-alive connections that never sent a request outlive
			// Shutdown's grace period; cutting them off is a clean stop.
			err = s.srv.Close()
		}
		if serveErr := <-s.served; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		if err != nil {
			s.stopErr = fmt.Errorf("stopping s3 at %s: %w", s.Endpoint, err)
		}
	})
	return s.stopErr
}
