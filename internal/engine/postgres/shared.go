package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sharedIdle is how long a shared pool stays open after its last borrower
// gave it back. Terraform sends the calls of one walk back to back (a
// refresh, then the plan of the same resource; the plan, then the apply), so
// a few seconds keep them on the same sessions; it stays well below the 5 s
// that DROP DATABASE waits for other sessions to leave.
var sharedIdle = 2 * time.Second

// shared holds the pools that Borrow hands out, one per connection
// settings (password included: it is a map key, never printed).
var shared = struct {
	mu    sync.Mutex
	pools map[Config]*sharedPool
}{pools: map[Config]*sharedPool{}}

type sharedPool struct {
	ready chan struct{} // closed once pool is open, or the entry is gone
	pool  *pgxpool.Pool
	// leases counts the borrowers holding the pool; gen tells a stale
	// idle timer from the current one.
	leases, gen int
}

// Borrow returns an open pool for cfg, shared with the other borrowers of
// this process, and the function that gives it back (once done with it;
// never Close a borrowed pool). Reusing a session saves a connection, an
// authentication (several round trips with SCRAM) and the server's cold
// catalog caches: it is meant for the short read-only looks that one
// Terraform walk makes several times. A pool that was already open is
// pinged first, since the server may have ended its sessions since; then,
// or when none is open, it is Connect's, errors included. cfg.MaxConns is
// ignored: shared pools have DefaultMaxConns.
func Borrow(ctx context.Context, cfg Config) (*pgxpool.Pool, func(), error) {
	cfg.MaxConns = 0
	for {
		shared.mu.Lock()
		e, ok := shared.pools[cfg]
		if !ok {
			e = &sharedPool{ready: make(chan struct{}), leases: 1}
			shared.pools[cfg] = e
			shared.mu.Unlock()
			pool, err := Connect(ctx, cfg)
			shared.mu.Lock()
			if err != nil && shared.pools[cfg] == e {
				delete(shared.pools, cfg)
			}
			e.pool = pool
			close(e.ready)
			shared.mu.Unlock()
			if err != nil {
				return nil, nil, err
			}
			return pool, e.releaser(cfg), nil
		}
		e.leases++
		e.gen++ // stops the idle timer, if one runs
		shared.mu.Unlock()
		giveBack := e.releaser(cfg)
		select {
		case <-e.ready:
		case <-ctx.Done():
			giveBack()
			return nil, nil, classify(cfg, ctx.Err())
		}
		if e.pool == nil {
			// The borrower that was opening it failed: try again.
			giveBack()
			continue
		}
		if err := e.pool.Ping(ctx); err != nil {
			// Its sessions were ended (a restart, a terminated backend, a
			// dropped database): forget it, and connect anew.
			e.forget(cfg)
			giveBack()
			continue
		}
		return e.pool, giveBack, nil
	}
}

// BorrowNew is Borrow without reuse: it always connects (as Connect does,
// so it proves that cfg's credentials work now), and the new pool becomes
// the shared one for cfg; one open before is closed once given back.
func BorrowNew(ctx context.Context, cfg Config) (*pgxpool.Pool, func(), error) {
	cfg.MaxConns = 0
	pool, err := Connect(ctx, cfg)
	shared.mu.Lock()
	old := shared.pools[cfg]
	if err != nil {
		shared.mu.Unlock()
		if old != nil {
			old.forget(cfg) // what fails now must fail for the next borrower too
		}
		return nil, nil, err
	}
	e := &sharedPool{ready: make(chan struct{}), pool: pool, leases: 1}
	close(e.ready)
	shared.pools[cfg] = e
	idle := old != nil && old.leases == 0 && old.pool != nil
	shared.mu.Unlock()
	if idle {
		old.pool.Close()
	}
	return pool, e.releaser(cfg), nil
}

// forget drops e from the shared pools, if it is still there; it closes
// once its last borrower gives it back.
func (e *sharedPool) forget(cfg Config) {
	shared.mu.Lock()
	idle := shared.pools[cfg] == e && e.leases == 0 && e.pool != nil
	if shared.pools[cfg] == e {
		delete(shared.pools, cfg)
	}
	shared.mu.Unlock()
	if idle {
		e.pool.Close()
	}
}

// releaser is the give-back function of one lease on e: the last one closes
// a pool that was forgotten, and starts the idle timer of one that was not.
func (e *sharedPool) releaser(cfg Config) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			shared.mu.Lock()
			e.leases--
			switch {
			case e.leases > 0 || e.pool == nil:
				shared.mu.Unlock()
			case shared.pools[cfg] != e:
				shared.mu.Unlock()
				e.pool.Close()
			default:
				e.gen++
				gen := e.gen
				shared.mu.Unlock()
				time.AfterFunc(sharedIdle, func() { e.closeIdle(cfg, gen) })
			}
		})
	}
}

// closeIdle closes e unless it was borrowed again since the idle timer gen started.
func (e *sharedPool) closeIdle(cfg Config, gen int) {
	shared.mu.Lock()
	if e.gen != gen || e.leases > 0 || shared.pools[cfg] != e {
		shared.mu.Unlock()
		return
	}
	delete(shared.pools, cfg)
	shared.mu.Unlock()
	e.pool.Close()
}

// CloseShared closes every shared pool that no one holds, at once (the
// process is about to end, or a test wants no session left behind).
func CloseShared() {
	shared.mu.Lock()
	var idle []*pgxpool.Pool
	for cfg, e := range shared.pools {
		if e.leases == 0 && e.pool != nil {
			delete(shared.pools, cfg)
			idle = append(idle, e.pool)
		}
	}
	shared.mu.Unlock()
	for _, p := range idle {
		p.Close()
	}
}
