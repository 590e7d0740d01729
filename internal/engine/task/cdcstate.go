package task

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"
	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// Bounds of the read-only look at a slot's backlog (plan time, refresh).
var (
	// pendingLimit is how many changes are decoded to count the backlog;
	// beyond it the count is estimated from the WAL still to read.
	pendingLimit = 2000
	// pendingTimeout bounds that decoding.
	pendingTimeout = 10 * time.Second
	// flushWait bounds the wait for the source to flush the WAL of
	// transactions committed asynchronously before the look (cdc.WaitFlushed).
	flushWait = 2 * time.Second
)

// advanceLag is the WAL distance behind the source at which an idle slot
// is worth an apply even without changes of the task's tables: applying
// confirms the source's WAL end, so the server can recycle what the slot held.
const advanceLag = 64 << 20

// CDCState is what a look at a task's change data capture found.
type CDCState struct {
	// Enabled is true in the CDC modes.
	Enabled bool
	// Started is true once capture was set up: the target holds the
	// task's checkpoint.
	Started bool
	// Checkpoint is the commit LSN of the last transaction applied (the
	// slot's consistent point before any), recorded on the target.
	Checkpoint pgoutput.LSN
	// AppliedAt is when the checkpoint was last written.
	AppliedAt time.Time
	Slot      cdc.SlotStatus
	// Pending is the slot's backlog; PendingKnown is false when it could
	// not be counted (the slot is busy or missing, or counting timed out;
	// PendingErr says why) or was not asked for.
	Pending      cdc.Pending
	PendingKnown bool
	PendingErr   error
	// ReadAt is when the look was taken.
	ReadAt time.Time
	// Broken, at plan time, is why capture cannot go on (the slot was
	// invalidated or dropped): the next apply of the task fails with it.
	Broken *plan.Problem
}

// EstimatedChanges is the backlog's size in changes: exact when it was
// counted whole, else extrapolated over the WAL still to read; -1 when unknown.
func (c CDCState) EstimatedChanges() int64 {
	switch {
	case !c.PendingKnown:
		return -1
	case !c.Pending.More:
		return int64(c.Pending.Changes)
	}
	read := int64(c.Pending.Through) - int64(c.Slot.ConfirmedFlush)
	if read <= 0 || c.Slot.LagBytes <= read {
		return int64(c.Pending.Changes)
	}
	return int64(float64(c.Pending.Changes) * float64(c.Slot.LagBytes) / float64(read))
}

// LagSeconds is how far behind the source the target is: the age of the
// oldest change not applied yet, 0 when there is none; -1 when unknown.
func (c CDCState) LagSeconds() float64 {
	if !c.PendingKnown {
		return -1
	}
	return c.Pending.Lag(c.ReadAt).Seconds()
}

// CatchUpDue reports whether an apply has something to do: changes of the
// task's tables wait in the slot (or may: they could not be counted), or the
// slot holds so much WAL that confirming the source's end is worth it.
func (c CDCState) CatchUpDue() bool {
	if !c.Enabled || !c.Slot.Exists || c.Slot.Lost() || c.Slot.LagBytes <= 0 {
		return false
	}
	if !c.PendingKnown {
		return !errors.Is(c.PendingErr, cdc.ErrSlotBusy)
	}
	return c.Pending.Changes > 0 || c.Slot.LagBytes >= advanceLag
}

// Health is the slot's state in one word: none (no capture), pending (set
// up by the next apply), missing, lost, or PostgreSQL's wal_status
// (reserved, extended, unreserved).
func (c CDCState) Health() string {
	switch {
	case !c.Slot.Exists && c.Started:
		return "missing"
	case !c.Slot.Exists && c.Enabled:
		return "pending"
	case !c.Slot.Exists:
		return "none"
	case c.Slot.WALStatus == "":
		return "reserved"
	}
	return c.Slot.WALStatus
}

// CDC reads the task's change data capture state without writing anything:
// the target's checkpoint, the slot, and with count its backlog, counted by
// decoding a bounded part of it.
func (s Spec) CDC(ctx context.Context, count bool) (CDCState, error) {
	src, tgt, giveBack, err := borrow(ctx, s)
	if err != nil {
		return CDCState{}, err
	}
	defer giveBack()
	pv := &Preview{}
	if pv.Status, err = enginecopy.ReadStatus(ctx, tgt, s.Name); err != nil {
		return CDCState{}, err
	}
	err = s.inspectCDC(ctx, src, tgt, pv, count)
	return pv.CDC, err
}

// inspectCDC fills pv.CDC and adds what stands in the way of capture to
// pv.Problems: the source's settings and privileges (before the slot
// exists), tables that cannot be replicated, and a slot lost since capture
// started. A task that loaded without capture reloads when it turns to
// full_load_and_cdc. With count, the slot's backlog is counted (read-only).
func (s Spec) inspectCDC(ctx context.Context, src, tgt *pgxpool.Pool, pv *Preview, count bool) error {
	st := CDCState{Enabled: s.Mode == ModeFullLoadAndCDC || s.Mode == ModeCDCOnly, ReadAt: time.Now()}
	var found bool
	var err error
	if st.Checkpoint, st.AppliedAt, found, err = cdc.ReadCheckpoint(ctx, tgt, s.Name); err != nil {
		return err
	}
	st.Started = found
	if !st.Enabled && !st.Started {
		pv.CDC = st
		return nil
	}
	if count {
		// A count under way (countAhead) holds the slot, which shows as
		// active until it ends: read the slot after it.
		s.awaitCount(ctx)
	}
	var mark slotMark
	if st.Slot, mark, err = slotStatus(ctx, src, s.Name); err != nil {
		return fmt.Errorf("reading the replication slot of task %s: %w", s.Name, err)
	}
	defer func() { pv.CDC = st }()
	if !st.Enabled {
		return nil
	}
	if s.Mode == ModeCDCOnly && pv.Reload {
		// cdc_only copied none of the rows: there is nothing to reload, and
		// dropping the tables would drop data loaded by other means. A
		// changed mapping applies to the changes from now on.
		pv.Reload = false
	}
	if s.Mode == ModeFullLoadAndCDC && !st.Started && !pv.Reload && loadedRows(pv.Status) {
		pv.Reload = true
		pv.ReloadReason = "the loaded rows were copied without change data capture, so no slot holds the changes made since"
	}
	if pv.Reload {
		// Everything starts again from a new slot: check as for a new task.
		st.Started, st.Slot = false, cdc.SlotStatus{CurrentLSN: st.Slot.CurrentLSN}
	}
	for _, pr := range s.cdcProblems(ctx, src, pv.Plan, st) {
		if count && pr.Attribute == "mode" {
			// A lost slot stops every apply, but must not stop the plans
			// that destroy or replace the task, the way out: at plan time
			// it is reported, not refused.
			st.Broken = &pr
			continue
		}
		pv.Problems = append(pv.Problems, pr)
	}
	if count && st.Slot.Active {
		// The reader of an apply that just ended may hold the slot a moment
		// longer; another apply's holds it for good.
		st.Slot, mark = waitSlotIdle(ctx, src, s.Name, st.Slot, mark)
	}
	if count && len(pv.Problems) == 0 && st.Slot.Exists && !st.Slot.Active && st.Slot.LagBytes > 0 {
		if mark, st.PendingErr = flushedFor(ctx, src, st.Slot, mark); st.PendingErr == nil {
			st.Pending, st.PendingErr = s.countBacklog(ctx, mark)
		}
		st.PendingKnown = st.PendingErr == nil
	}
	if count && st.Slot.Active {
		st.PendingErr = cdc.ErrSlotBusy
	}
	return nil
}

// loadedRows reports whether a load copied any chunk.
func loadedRows(s enginecopy.Status) bool {
	for _, t := range s.Tables {
		if t.ChunksDone > 0 || t.Rows > 0 {
			return true
		}
	}
	return false
}

// cdcProblems checks what capture needs on the source.
func (s Spec) cdcProblems(ctx context.Context, src *pgxpool.Pool, p *plan.Plan, st CDCState) []plan.Problem {
	var problems []plan.Problem
	source := func(summary, detail string) {
		problems = append(problems, plan.Problem{Attribute: "source_endpoint_id", Summary: summary, Detail: detail})
	}
	slot := cdc.SlotName(s.Name)
	reload := "Reload the task: set on_destroy = \"drop_target\" and run terraform apply -replace=<this task's address>."
	if s.Mode == ModeCDCOnly {
		reload = "Bring the target's tables level with the source by other means, then replace the task: terraform apply -replace=<this task's address>."
	}
	switch {
	case st.Slot.Lost():
		problems = append(problems, plan.Problem{Attribute: "mode", Summary: "Replication Slot Invalidated",
			Detail: fmt.Sprintf("The source invalidated replication slot %s of task %s: it retained more WAL than "+
				"max_slot_wal_keep_size allows, and the changes since %s are gone, so the target can no longer be "+
				"kept exact. Raise max_slot_wal_keep_size on the source (or apply more often). %s",
				slot, s.Name, st.Checkpoint, reload)})
		return problems
	case st.Started && !st.Slot.Exists:
		problems = append(problems, plan.Problem{Attribute: "mode", Summary: "Replication Slot Missing",
			Detail: fmt.Sprintf("Task %s captured changes through replication slot %s, which no longer exists on the "+
				"source (dropped by hand, or the source was restored or failed over): the changes since %s are lost. %s",
				s.Name, slot, st.Checkpoint, reload)})
		return problems
	}
	if p == nil {
		// A look at the slot alone (refresh, after an apply): what setting
		// up capture needs is checked when there is a plan.
		return problems
	}

	var walLevel string
	var replication, createDB bool
	var freeSlots, freeSenders int
	err := src.QueryRow(ctx, `
		SELECT current_setting('wal_level'),
		       coalesce((SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), false),
		       has_database_privilege(current_database(), 'CREATE'),
		       current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int,
		       current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int`).
		Scan(&walLevel, &replication, &createDB, &freeSlots, &freeSenders)
	if err != nil {
		source("Unable to Check the Source for Change Data Capture", err.Error())
		return problems
	}
	if !replication {
		source("Missing REPLICATION Privilege",
			fmt.Sprintf("Change data capture reads the source through a replication slot, which needs the REPLICATION "+
				"attribute: run ALTER ROLE %s WITH REPLICATION on the source (on Amazon RDS and Aurora: GRANT rds_replication TO %s).",
				s.Source.Postgres.Username, s.Source.Postgres.Username))
	}
	if !st.Slot.Exists {
		if walLevel != "logical" {
			source("Logical Decoding Not Enabled",
				fmt.Sprintf("The source's wal_level is %q; change data capture needs wal_level = logical. Set it in "+
					"postgresql.conf (ALTER SYSTEM SET wal_level = logical; on Amazon RDS and Aurora set "+
					"rds.logical_replication = 1 in the parameter group) and restart the server.", walLevel))
		}
		if freeSlots <= 0 {
			source("No Free Replication Slot",
				"Every replication slot allowed by the source's max_replication_slots is taken. Drop a slot that is no "+
					"longer used (SELECT slot_name, active FROM pg_replication_slots) or raise max_replication_slots and restart.")
		}
		if freeSenders <= 0 {
			source("No Free WAL Sender",
				"Every WAL sender allowed by the source's max_wal_senders is in use. Raise max_wal_senders and restart the server.")
		}
		if !createDB {
			source("Cannot Create a Publication",
				fmt.Sprintf("Change data capture creates publication %s, which needs the CREATE privilege on the source "+
					"database: GRANT CREATE ON DATABASE %s TO %s.", cdc.PublicationName(s.Name), s.Source.Postgres.Database, s.Source.Postgres.Username))
		}
	}
	if !st.Slot.Exists {
		// CREATE PUBLICATION … FOR TABLE takes the tables' owner.
		names := make([]string, len(p.Tables))
		for i, t := range p.Tables {
			names[i] = t.Source.QualifiedName()
		}
		rows, err := src.Query(ctx, `
			SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname || '.' || c.relname = ANY($1) AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
			ORDER BY 1`, names)
		if err == nil {
			for rows.Next() {
				var name, owner string
				if err := rows.Scan(&name, &owner); err == nil {
					problems = append(problems, plan.Problem{Rule: ruleOf(s.Rules, catalogName(name)), Field: "source",
						Summary: "Cannot Publish Table",
						Detail: fmt.Sprintf("Change data capture publishes source table %s, which takes its owner's rights: %s "+
							"is owned by %s, not by %s. Run GRANT %s TO %s on the source (or ALTER TABLE %s OWNER TO %s).",
							name, name, owner, s.Source.Postgres.Username, owner, s.Source.Postgres.Username, name, s.Source.Postgres.Username)})
				}
			}
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			source("Unable to Check Table Owners", err.Error())
		}
	}
	for _, t := range p.Tables {
		ri := t.Source.ReplicaIdentity
		if ri == "full" || ri == "index" || (ri != "nothing" && len(t.Source.PrimaryKey) > 0) {
			continue
		}
		name := t.Source.QualifiedName()
		why := "has no primary key"
		if ri == "nothing" {
			why = "has REPLICA IDENTITY NOTHING"
		}
		problems = append(problems, plan.Problem{Rule: ruleOf(s.Rules, t.Source), Field: "source",
			Summary: "Table Cannot Be Replicated",
			Detail: fmt.Sprintf("Source table %s %s: change data capture cannot tell which row an UPDATE or DELETE "+
				"changed (and the source would refuse them once the table is published). Add a primary key, or run "+
				"ALTER TABLE %s REPLICA IDENTITY FULL on the source, or leave the table out of this task.", name, why, name)})
	}
	return problems
}

// catalogName splits "schema.name" into a catalog table for ruleOf.
func catalogName(qualified string) catalog.Table {
	schema, name, _ := strings.Cut(qualified, ".")
	return catalog.Table{Schema: schema, Name: name}
}

// slotReleaseWait is how long a look at the slot waits for a busy slot.
var slotReleaseWait = 2 * time.Second

// waitSlotIdle re-reads a slot in use until it is idle or slotReleaseWait
// passed, and returns the last reading.
func waitSlotIdle(ctx context.Context, src *pgxpool.Pool, task string, st cdc.SlotStatus, m slotMark) (cdc.SlotStatus, slotMark) {
	deadline := time.Now().Add(slotReleaseWait)
	for st.Active && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return st, m
		case <-time.After(20 * time.Millisecond):
		}
		next, nextMark, err := slotStatus(ctx, src, task)
		if err != nil {
			return st, m
		}
		st, m = next, nextMark
	}
	return st, m
}

// slotStatus reads the task's slot (cdc.ReadSlotStatus) on a session of
// src rather than over a connection of its own, and what a count of the
// slot's backlog depends on.
func slotStatus(ctx context.Context, src *pgxpool.Pool, task string) (cdc.SlotStatus, slotMark, error) {
	st, err := cdc.ReadSlotStatus(ctx, src, task)
	if err != nil {
		return cdc.SlotStatus{}, slotMark{}, err
	}
	return st, slotMark{confirmed: st.ConfirmedFlush, restart: st.RestartLSN, flushed: st.FlushedLSN}, nil
}

// flushedFor is m once the source has flushed the WAL up to st's end
// (cdc.WaitFlushed): a count of the backlog then sees every transaction
// committed before st was read, which the catch-up would apply.
func flushedFor(ctx context.Context, src *pgxpool.Pool, st cdc.SlotStatus, m slotMark) (slotMark, error) {
	var err error
	m.flushed, err = cdc.WaitFlushed(ctx, src, st.CurrentLSN, m.flushed, flushWait)
	return m, err
}
