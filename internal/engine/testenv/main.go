package testenv

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// RunWithPostgres is what a test package's TestMain does when its tests
// share clusters: it starts n throwaway clusters, hands them to use, runs
// the tests and stops the clusters. A cluster that does not start fails the
// package; it is never a skip. Call it as
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m, 1, func(c []*testenv.Postgres) { pg = c[0] })) }
func RunWithPostgres(m *testing.M, n int, use func(clusters []*Postgres)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	clusters := make([]*Postgres, 0, n)
	stop := func() (failed bool) {
		for _, p := range clusters {
			if err := p.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "stopping postgres: %v\n", err)
				failed = true
			}
		}
		return failed
	}
	for range n {
		p, err := StartPostgres(ctx, PostgresOptions{})
		if err != nil {
			cancel()
			fmt.Fprintf(os.Stderr, "starting postgres: %v\n", err)
			stop()
			return 1
		}
		clusters = append(clusters, p)
	}
	cancel()
	use(clusters)
	code := m.Run()
	if stop() && code == 0 {
		code = 1
	}
	return code
}

var dbSeq atomic.Int64

// DatabaseName is a database name unique to the test and the run, derived
// from the test's name so a failing test's leftovers are easy to spot.
func DatabaseName(t testing.TB) string {
	name := fmt.Sprintf("%s_%d", strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")), dbSeq.Add(1))
	if len(name) > 50 {
		name = name[len(name)-50:]
	}
	return name
}
