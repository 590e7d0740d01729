package postgres

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
)

// borrow borrows cfg's shared pool for the rest of t.
func borrow(t *testing.T, cfg Config) *pgxpool.Pool {
	t.Helper()
	pool, giveBack, err := Borrow(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Borrow(%s): %v", cfg.Target(), err)
	}
	t.Cleanup(giveBack)
	return pool
}

func backendPID(t *testing.T, pool *pgxpool.Pool) int32 {
	t.Helper()
	var pid int32
	if err := pool.QueryRow(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// sessions counts the sessions open on database.
func sessions(t *testing.T, database string) string {
	t.Helper()
	var n string
	pool := connect(t, superConfig("postgres"))
	if err := pool.QueryRow(t.Context(), `SELECT count(*)::text FROM pg_stat_activity WHERE datname = $1`, database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Looks one after the other share a session; BorrowNew opens a new one,
// which the next Borrow gets.
func TestBorrowReusesSessions(t *testing.T) {
	t.Cleanup(CloseShared)
	cfg := superConfig(newDatabase(t))
	first, giveBack, err := Borrow(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pid := backendPID(t, first)
	giveBack()
	giveBack()       // a second call is harmless
	cfg.MaxConns = 7 // not part of the pool's identity
	second := borrow(t, cfg)
	if second != first || backendPID(t, second) != pid {
		t.Fatalf("second look got another pool or session (pid %d, want %d)", backendPID(t, second), pid)
	}
	renewed, giveBackNew, err := BorrowNew(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer giveBackNew()
	if renewed == first || backendPID(t, renewed) == pid {
		t.Fatal("BorrowNew reused the open session")
	}
	if third := borrow(t, cfg); third != renewed {
		t.Fatal("Borrow after BorrowNew did not get the new pool")
	}
	// The replaced pool still works for whoever holds it.
	if backendPID(t, second) != pid {
		t.Fatal("the replaced pool lost its session while borrowed")
	}
}

// A session the server ended meanwhile is replaced, not handed out.
func TestBorrowAfterTerminatedSession(t *testing.T) {
	t.Cleanup(CloseShared)
	cfg := superConfig(newDatabase(t))
	pool, giveBack, err := Borrow(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pid := backendPID(t, pool)
	giveBack()
	admin := connect(t, superConfig("postgres"))
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if got := backendPID(t, borrow(t, cfg)); got == pid {
		t.Fatal("the terminated session was handed out again")
	}
}

// A database dropped under an open pool is reported as missing, as Connect does.
func TestBorrowAfterDatabaseDropped(t *testing.T) {
	t.Cleanup(CloseShared)
	db := newDatabase(t)
	cfg := superConfig(db)
	_, giveBack, err := Borrow(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	giveBack()
	exec(t, "postgres", `DROP DATABASE `+db+` WITH (FORCE)`)
	_, _, err = Borrow(t.Context(), cfg)
	if ce, ok := engine.AsConnectError(err); !ok || ce.Kind != engine.ConnectDatabaseMissing {
		t.Fatalf("Borrow after DROP DATABASE: %v, want a missing database", err)
	}
}

// BorrowNew proves the password now: once it changed on the server, an
// open pool does not hide it, and the failure is the next borrower's too.
func TestBorrowNewChecksPassword(t *testing.T) {
	t.Cleanup(CloseShared)
	const role = "shared_tester"
	if err := pg.CreateRole(t.Context(), role, connPassword); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: role, Password: connPassword, SSLMode: "disable"}
	borrow(t, cfg)
	exec(t, "postgres", `ALTER ROLE `+role+` PASSWORD '`+badPassword+`'`)
	_, _, err := BorrowNew(t.Context(), cfg)
	_ = wantConnectError(t, err, engine.ConnectAuthFailed)
	_, _, err = Borrow(t.Context(), cfg)
	_ = wantConnectError(t, err, engine.ConnectAuthFailed)
}

// A pool given back ends its sessions once idle; CloseShared ends them at once.
func TestSharedPoolsClose(t *testing.T) {
	defer func(d time.Duration) { sharedIdle = d }(sharedIdle)
	sharedIdle = 0
	db := newDatabase(t)
	_, giveBack, err := Borrow(t.Context(), superConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	giveBack()
	deadline := time.Now().Add(time.Minute)
	for sessions(t, db) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the idle pool kept its sessions")
		}
		time.Sleep(10 * time.Millisecond)
	}

	sharedIdle = time.Hour
	db2 := newDatabase(t)
	_, giveBack, err = Borrow(t.Context(), superConfig(db2))
	if err != nil {
		t.Fatal(err)
	}
	held := borrow(t, superConfig(db))
	giveBack()
	CloseShared()
	// pg_stat_activity shows a session until its backend has exited.
	for sessions(t, db2) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("CloseShared left a session open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if backendPID(t, held) == 0 {
		t.Fatal("CloseShared closed a pool still borrowed")
	}
}

// Concurrent looks share pools safely (run with -race).
func TestBorrowConcurrent(t *testing.T) {
	t.Cleanup(CloseShared)
	cfgs := []Config{superConfig(newDatabase(t)), superConfig(newDatabase(t))}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				pool, giveBack, err := Borrow(context.Background(), cfgs[(i+j)%2])
				if err != nil {
					errs <- err
					return
				}
				var one int
				err = pool.QueryRow(context.Background(), `SELECT 1`).Scan(&one)
				giveBack()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range cfgs {
		if n, _ := strconv.Atoi(sessions(t, c.Database)); n < 1 || n > DefaultMaxConns {
			t.Errorf("%s has %d sessions, want 1 to %d (one shared pool)", c.Database, n, DefaultMaxConns)
		}
	}
}
