package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDemo runs `make demo` at a small scale, so the suite proves that a
// newcomer's first command works. run checks every step itself: the load,
// the plan announcing exactly the changes written on the source (exit code
// 2), the apply replaying them, both sides equal, the empty plan after it,
// and no replication slot or publication left after the destroy.
func TestDemo(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("runs terraform: set TF_ACC=1 (make test does)")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), repo, 2000, false); err != nil {
		t.Fatal(err)
	}
}
