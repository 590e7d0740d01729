package task

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
)

// cdcBatchBytes bounds one batch of changes between the source's stream
// and the target's transaction. One batch is applied while the next is
// decoded, and none waits in between (cdcPipeline): memory follows the
// batch, not the backlog.
const (
	cdcBatchBytes = 8 << 20
	cdcPipeline   = 0
)

// cdcApplyParts bounds how many target transactions apply a batch at once.
var cdcApplyParts = 2

// CDCProgress is what one catch-up did.
type CDCProgress struct {
	// Until is the source's WAL end read when the catch-up started: every
	// transaction committed up to it is applied when RunCDC returns nil.
	Until pgoutput.LSN
	// Applied is the commit LSN of the last transaction applied (the
	// target's checkpoint).
	Applied      pgoutput.LSN
	Transactions int
	Changes      int
}

// CDCOptions steer the change data capture part of one apply.
type CDCOptions struct {
	// CatchUpAfterLoad makes the run that finishes the load also catch up
	// (wait_for = "cdc_synced"); otherwise a run catches up only when the
	// load was already done when it started.
	CatchUpAfterLoad bool
	// Paused sets up capture and loads, but applies no changes: the slot
	// keeps the position (cdc.enabled = false).
	Paused bool
	// Batch, when set, is called after each applied batch with the totals so far.
	Batch func(CDCProgress)
}

// RunCDC moves a full_load_and_cdc or cdc_only task forward. On its first
// run it creates the publication and the replication slot and loads every
// table from the snapshot the slot exported (one consistent cut: no gap, no
// overlap; cdc_only creates what the target lacks and copies no rows);
// later runs resume an unfinished load and catch up from the target's
// checkpoint to the source's WAL end read at their start. A changed mapping
// reloads: slot and publication are made again, the tables dropped and
// copied again.
func (s Spec) RunCDC(ctx context.Context, o RunOptions) (enginecopy.Status, CDCProgress, *Preview, error) {
	workers := max(s.Parallelism, 1)
	// The preview and the catch-up run on the process's shared sessions,
	// warm from the plan that came just before; a load gets pools of its
	// own, sized for its workers.
	src, tgt, giveBack, err := borrow(ctx, s)
	if err != nil {
		return enginecopy.Status{}, CDCProgress{}, nil, err
	}
	defer giveBack()
	pv, err := s.preview(ctx, src, tgt)
	if err == nil && len(pv.Problems) == 0 {
		err = s.inspectCDC(ctx, src, tgt, pv, false)
	}
	if err != nil {
		return enginecopy.Status{}, CDCProgress{}, pv, err
	}
	if len(pv.Problems) > 0 {
		return pv.Status, CDCProgress{}, pv, ProblemsError(pv.Problems)
	}
	source := cdc.Source{Config: *s.Source.Postgres}
	if pv.Reload {
		// The loaded rows belong to another mapping or to no cut of this
		// slot: start over from a new slot.
		if err := source.Teardown(ctx, s.Name); err != nil {
			return pv.Status, CDCProgress{}, pv, fmt.Errorf("task %s: %w", s.Name, err)
		}
		if err := cdc.Forget(ctx, tgt, s.Name); err != nil {
			return pv.Status, CDCProgress{}, pv, err
		}
		if err := s.dropLoaded(ctx, tgt, pv.Status); err != nil {
			return pv.Status, CDCProgress{}, pv, err
		}
		if pv, err = s.preview(ctx, src, tgt); err == nil {
			err = s.inspectCDC(ctx, src, tgt, pv, false)
		}
		if err != nil {
			return enginecopy.Status{}, CDCProgress{}, pv, err
		}
	}
	status := pv.Status
	loadedBefore := pv.Done()
	if !loadedBefore {
		lsrc, ltgt, err := pools(ctx, s, workers)
		if err != nil {
			return status, CDCProgress{}, pv, err
		}
		defer lsrc.Close()
		defer ltgt.Close()
		src, tgt = lsrc, ltgt
	}
	if o.PrepareOnly && !loadedBefore {
		// wait_for = "none": no slot yet, so no WAL is held for a load
		// that has not started.
		status, err = enginecopy.Run(ctx, src, tgt, pv.Plan, pv.Fingerprint, enginecopy.Options{
			Task: s.Name, Parallelism: workers, Progress: o.Progress, PrepareOnly: true})
		return status, CDCProgress{}, pv, err
	}
	if !loadedBefore {
		opts := enginecopy.Options{Task: s.Name, Parallelism: workers, Progress: o.Progress, SchemaOnly: s.Mode == ModeCDCOnly}
		// A load cut short after the slot was made resumes on a new
		// snapshot; replaying from the slot's consistent point makes the
		// rows changed in between right again.
		var hold *cdc.Hold
		if !pv.CDC.Slot.Exists {
			tables := make([]string, 0, len(pv.Plan.Tables))
			for _, t := range pv.Plan.Tables {
				tables = append(tables, t.Source.QualifiedName())
			}
			var cut cdc.Cut
			if cut, hold, err = source.Setup(ctx, s.Name, tables); err != nil {
				return status, CDCProgress{}, pv, fmt.Errorf("setting up change data capture for task %s: %w", s.Name, err)
			}
			// Once the target knows capture started, a lost slot is an error, never silently made again.
			if err := cdc.NewApplier(tgt, s.Name, pv.Plan).Start(ctx, cut.ConsistentPoint); err != nil {
				_ = hold.Close()
				return status, CDCProgress{}, pv, err
			}
			// The load reads the slot's snapshot, valid while hold is open.
			opts.Snapshot = cut.Snapshot
		}
		status, err = enginecopy.Run(ctx, src, tgt, pv.Plan, pv.Fingerprint, opts)
		// The slot is busy on hold's connection until it closes: end it
		// before the catch-up streams from the slot (Close of nil is a no-op).
		_ = hold.Close()
		if err != nil {
			return status, CDCProgress{}, pv, err
		}
	}
	if o.CDC.Paused || (!loadedBefore && !o.CDC.CatchUpAfterLoad && s.Mode != ModeCDCOnly) {
		return status, CDCProgress{}, pv, nil
	}
	progress, err := s.catchUp(ctx, src, tgt, source, pv, o.CDC.Batch)
	return status, progress, pv, err
}

// catchUp applies every change committed up to the source's current WAL end.
func (s Spec) catchUp(ctx context.Context, src, tgt *pgxpool.Pool, source cdc.Source, pv *Preview, report func(CDCProgress)) (CDCProgress, error) {
	var endText string
	// The insert position, not the write position: with asynchronous
	// commit a transaction is visible before its commit record is written,
	// and it belongs to this catch-up all the same (decoding waits the
	// moment it takes the WAL writer to flush it).
	if err := src.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&endText); err != nil {
		return CDCProgress{}, fmt.Errorf("reading the source's WAL end: %w", err)
	}
	until, err := pgoutput.ParseLSN(endText)
	if err != nil {
		return CDCProgress{}, err
	}
	applier := cdc.NewApplier(tgt, s.Name, pv.Plan)
	// Batches confined to keys are applied by up to parallelism target
	// transactions at once.
	applier.Parts = min(max(s.Parallelism, 1), cdcApplyParts)
	checkpoint, err := applier.Checkpoint(ctx)
	if err != nil {
		return CDCProgress{}, err
	}
	p := CDCProgress{Until: until, Applied: checkpoint}
	var mu sync.Mutex
	// Decoding and applying overlap: the stream goes on filling the next
	// batch while the previous one commits on the target. At most
	// cdcPipeline batches wait between them, so memory stays bounded by
	// the batch size, not by the backlog.
	queue := make(chan []cdc.Txn, cdcPipeline)
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	applied := make(chan error, 1)
	// The target is readied while the stream starts.
	prepared := make(chan error, 1)
	go func() { prepared <- applier.Prepare(ctx) }()
	go func() {
		defer close(applied)
		if err := <-prepared; err != nil {
			applied <- err
			stopRead()
			for range queue {
			}
			return
		}
		for batch := range queue {
			lsn, err := applier.Apply(ctx, batch)
			if err != nil {
				applied <- err
				stopRead()
				for range queue { // let the reader finish its send
				}
				return
			}
			mu.Lock()
			p.Applied = lsn
			p.Transactions += len(batch)
			for _, t := range batch {
				p.Changes += len(t.Changes)
			}
			if report != nil {
				report(p)
			}
			mu.Unlock()
		}
	}()
	// finishApply lets the applier finish what it was handed and returns
	// why it stopped, if it failed.
	var once sync.Once
	var applyErr error
	finishApply := func() error {
		once.Do(func() {
			close(queue)
			applyErr = <-applied
		})
		return applyErr
	}
	// Once everything up to until is applied, the stream confirms until
	// itself, so that WAL of tables outside the publication does not pile
	// up behind an idle slot.
	settled := false
	readErr := source.ReadSettled(readCtx, s.Name, checkpoint, until, cdcBatchBytes, func(batch []cdc.Txn) error {
		select {
		case queue <- batch:
			return nil
		case <-readCtx.Done():
			return readCtx.Err()
		}
	}, func() pgoutput.LSN {
		mu.Lock()
		defer mu.Unlock()
		return p.Applied
	}, func() (pgoutput.LSN, error) {
		if err := finishApply(); err != nil {
			mu.Lock()
			defer mu.Unlock()
			return p.Applied, err
		}
		settled = true
		return until, nil
	})
	_ = finishApply() // its error is applyErr, checked below
	mu.Lock()
	defer mu.Unlock()
	switch {
	case applyErr != nil:
		return p, fmt.Errorf("catching up task %s: %w", s.Name, applyErr)
	case readErr != nil:
		return p, fmt.Errorf("catching up task %s: %w", s.Name, readErr)
	case settled:
		return p, nil
	}
	// Nothing was streamed: confirm until on the idle slot.
	if err := source.Advance(ctx, s.Name, until); err != nil {
		return p, fmt.Errorf("confirming %s on the slot of task %s: %w", until, s.Name, err)
	}
	return p, nil
}

// Teardown drops the task's replication slot and publication on the source.
func (s Spec) Teardown(ctx context.Context) error {
	if s.Source.Postgres == nil {
		return nil
	}
	return cdc.Source{Config: *s.Source.Postgres}.Teardown(ctx, s.Name)
}
