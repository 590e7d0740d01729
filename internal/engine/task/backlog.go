package task

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// Counting a slot's backlog decodes WAL on the source: it is the dearest
// part of a look at a task, and one Terraform walk looks twice (the refresh,
// then the plan). A count is kept, for this process, with the positions it
// depends on, and taken again only when they moved.

// slotMark is what a count of a slot's backlog depends on: the slot's
// positions, and how far the source had flushed WAL before counting (the
// peek decodes up to the flushed end).
type slotMark struct {
	confirmed, restart, flushed pgoutput.LSN
}

// backlogCount is one count, done or under way.
type backlogCount struct {
	mark    slotMark
	done    chan struct{} // closed once pending and err are set
	pending cdc.Pending
	err     error
}

// fits reports whether c, done, is what counting at m would find: the slot
// has not moved, and either the count stopped at its limit (WAL written
// since lies beyond it) or no WAL was flushed since. A count that ran out
// of time would run out again.
func (c *backlogCount) fits(m slotMark) bool {
	if c.mark.confirmed != m.confirmed || c.mark.restart != m.restart {
		return false
	}
	if c.err != nil {
		return errors.Is(c.err, context.DeadlineExceeded)
	}
	return c.pending.More || c.mark.flushed == m.flushed
}

// backlogKey names a slot: its task on one source, counted up to limit.
type backlogKey struct {
	source postgres.Config
	task   string
	limit  int
}

// backlogs holds the last count of each slot (the source's settings,
// password included, are a map key only).
var backlogs = struct {
	mu     sync.Mutex
	counts map[backlogKey]*backlogCount
}{counts: map[backlogKey]*backlogCount{}}

func (s Spec) backlogKey() backlogKey {
	cfg := *s.Source.Postgres
	cfg.MaxConns = 0
	return backlogKey{source: cfg, task: s.Name, limit: pendingLimit}
}

// countBacklog counts the changes waiting in the task's slot, found at m
// (see cdc.Source.Pending), or takes the count this process already made
// there, waiting for it when it is under way.
func (s Spec) countBacklog(ctx context.Context, m slotMark) (cdc.Pending, error) {
	key := s.backlogKey()
	backlogs.mu.Lock()
	c := backlogs.counts[key]
	backlogs.mu.Unlock()
	if c != nil && c.mark.confirmed == m.confirmed && c.mark.restart == m.restart {
		select {
		case <-c.done:
		case <-ctx.Done():
			return cdc.Pending{}, ctx.Err()
		}
		if c.fits(m) {
			return c.pending, c.err
		}
	}
	c = s.startCount(ctx, key, m)
	<-c.done
	return c.pending, c.err
}

// startCount starts counting the slot's backlog at m and makes it the
// slot's latest count.
func (s Spec) startCount(ctx context.Context, key backlogKey, m slotMark) *backlogCount {
	c := &backlogCount{mark: m, done: make(chan struct{})}
	backlogs.mu.Lock()
	backlogs.counts[key] = c
	backlogs.mu.Unlock()
	go func() {
		defer close(c.done)
		cctx, cancel := context.WithTimeout(ctx, pendingTimeout)
		defer cancel()
		c.pending, c.err = cdc.Source{Config: *s.Source.Postgres}.Pending(cctx, s.Name, key.limit)
	}()
	return c
}

// awaitCount waits for the count of the task's slot under way, if any.
func (s Spec) awaitCount(ctx context.Context) {
	backlogs.mu.Lock()
	c := backlogs.counts[s.backlogKey()]
	backlogs.mu.Unlock()
	if c != nil {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
}

// countAhead starts counting the backlog of the task's slot when the plan
// is likely to ask for it (the slot exists, is idle and lags) and no count
// fits the slot as it is, so that the count runs while the catalogs are
// read. It returns the function that stops it, when it was not used.
func (s Spec) countAhead(ctx context.Context, src *pgxpool.Pool) (stop func()) {
	if s.Mode != ModeFullLoadAndCDC && s.Mode != ModeCDCOnly {
		return func() {}
	}
	slot, m, err := slotStatus(ctx, src, s.Name)
	if err != nil || !slot.Exists || slot.Active || slot.LagBytes <= 0 {
		return func() {}
	}
	if m, err = flushedFor(ctx, src, slot, m); err != nil {
		return func() {}
	}
	key := s.backlogKey()
	backlogs.mu.Lock()
	c := backlogs.counts[key]
	backlogs.mu.Unlock()
	if c != nil {
		select {
		case <-c.done:
			if c.fits(m) {
				return func() {}
			}
		default:
			return func() {} // one is under way
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	c = s.startCount(ctx, key, m)
	return func() {
		cancel()
		<-c.done
	}
}
