package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// freePort asks the kernel for an unused loopback port. Another process may
// take it before we bind again; callers retry on "address in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a "tcp" listener always has a *TCPAddr
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("releasing free port %d: %w", port, err)
	}
	return port, nil
}

// child is a started server process whose exit is observed by one goroutine,
// so both the readiness poll and Stop can wait on it.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid once exited is closed
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then kills. It is safe on an exited child.
func (c *child) stop(sig syscall.Signal, grace time.Duration) error {
	if c.hasExited() {
		return nil
	}
	if err := c.cmd.Process.Signal(sig); err != nil && !c.hasExited() {
		return fmt.Errorf("signalling pid %d: %w", c.cmd.Process.Pid, err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	}
	if err := c.cmd.Process.Kill(); err != nil && !c.hasExited() {
		return fmt.Errorf("killing pid %d: %w", c.cmd.Process.Pid, err)
	}
	<-c.exited
	return nil
}

// lockedBuffer collects a child's output while readers look at it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns at most the last n bytes of s, so errors stay readable.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	return tail(string(b), n)
}
