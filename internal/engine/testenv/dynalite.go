package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	dynalitePackage      = "dynalite@4"
	dynaliteStartTimeout = 30 * time.Second
	dynaliteStartTries   = 5
)

// Dynalite is a running dynalite, a DynamoDB API server in Node.js that
// keeps its tables in memory.
type Dynalite struct {
	Endpoint string // "http://127.0.0.1:PORT"

	proc     *child
	stopOnce sync.Once
	stopErr  error
}

// StartDynalite installs dynalite when needed and starts it on a free
// loopback port. The caller must call Stop.
func StartDynalite(ctx context.Context) (*Dynalite, error) {
	cli, err := EnsureDynalite(ctx)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("starting dynalite: Node.js is required: %w", err)
	}
	var lastErr error
	for range dynaliteStartTries {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		d, err := startDynaliteOn(ctx, node, cli, port)
		if err == nil {
			return d, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("starting dynalite after %d tries: %w", dynaliteStartTries, lastErr)
}

func startDynaliteOn(ctx context.Context, node, cli string, port int) (*Dynalite, error) {
	cmd := exec.Command(node, cli,
		// dynalite listens on every interface unless told otherwise.
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		// Tables are ACTIVE at once, so tests need not poll for status.
		"--createTableMs", "0",
		"--deleteTableMs", "0",
		"--updateTableMs", "0",
	)
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	proc, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting dynalite: %w", err)
	}
	d := &Dynalite{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), proc: proc}

	ctx, cancel := context.WithTimeout(ctx, dynaliteStartTimeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var dialer net.Dialer
	for {
		if proc.hasExited() {
			if strings.Contains(out.String(), "EADDRINUSE") {
				return nil, fmt.Errorf("dynalite on port %d: %w", port, errPortInUse)
			}
			return nil, fmt.Errorf("dynalite exited during startup (%v):\n%s", proc.err, tail(out.String(), logTailBytes))
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := dialer.DialContext(attempt, "tcp", addr)
		cancelAttempt()
		if err == nil {
			_ = conn.Close()
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(
				fmt.Errorf("dynalite on port %d not accepting connections: %w (last error: %v); output:\n%s",
					port, ctx.Err(), err, tail(out.String(), logTailBytes)),
				d.Stop())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartDynaliteT starts dynalite for t and stops it when t ends.
func StartDynaliteT(t testing.TB) *Dynalite {
	t.Helper()
	d, err := StartDynalite(t.Context())
	if err != nil {
		t.Fatalf("starting dynalite: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stopping dynalite: %v", err)
		}
	})
	return d
}

// Stop kills dynalite and waits for it; its data is in memory only. It is
// safe to call more than once.
func (d *Dynalite) Stop() error {
	d.stopOnce.Do(func() {
		if d.proc == nil {
			return
		}
		if err := d.proc.stop(syscall.SIGKILL, 0); err != nil {
			d.stopErr = fmt.Errorf("stopping dynalite at %s: %w", d.Endpoint, err)
		}
	})
	return d.stopErr
}

// EnsureDynalite installs dynalite with npm into the cache dir unless it is
// there already, and returns the path of its cli.js.
func EnsureDynalite(ctx context.Context) (cliPath string, err error) {
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	prefix := filepath.Join(cache, "npm")
	cli := filepath.Join(prefix, "node_modules", "dynalite", "cli.js")
	// The marker is written only after npm succeeded, so an install cut
	// short (cli.js present, a dependency missing) is redone.
	marker := filepath.Join(prefix, ".dynalite-installed")
	if installed(cli, marker) {
		return cli, nil
	}

	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("creating cache dir %s: %w", cache, err)
	}
	// Parallel test packages may all find dynalite missing; one installs,
	// the rest wait and then find it.
	unlock, err := lockFile(ctx, filepath.Join(cache, "npm.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if installed(cli, marker) {
		return cli, nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("installing dynalite: npm is required: %w", err)
	}
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--prefix", prefix, dynalitePackage)
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("installing %s into %s: %w\n%s", dynalitePackage, prefix, err, tail(string(out), logTailBytes))
	}
	if _, err := os.Stat(cli); err != nil {
		return "", fmt.Errorf("installing %s into %s: npm succeeded but %w", dynalitePackage, prefix, err)
	}
	if err := os.WriteFile(marker, []byte(dynalitePackage+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("marking dynalite installed: %w", err)
	}
	return cli, nil
}

func installed(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// cacheDir is $MIGRATION_TEST_CACHE, else a folder in the user's cache dir;
// it outlives test runs so npm runs once per machine.
func cacheDir() (string, error) {
	if dir := os.Getenv("MIGRATION_TEST_CACHE"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache dir (set MIGRATION_TEST_CACHE): %w", err)
	}
	return filepath.Join(base, "terraform-provider-migration"), nil
}

// lockFile takes an exclusive flock on path, polling so ctx can cancel the
// wait, and returns the function that releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
