package provider

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/task"
)

// defaultWarnRetainedWALMB is the retained WAL, in MiB, past which the plan warns.
const defaultWarnRetainedWALMB = 1024

// cdcAttributes are the change data capture attributes of migration_task.
func cdcAttributes() map[string]schema.Attribute {
	computedStr := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	computedInt := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Computed: true, MarkdownDescription: desc}
	}
	return map[string]schema.Attribute{
		"cdc": schema.SingleNestedAttribute{
			Optional: true,
			MarkdownDescription: "Change data capture settings of the CDC modes. Omitted, capture runs and the plan " +
				"warns past 1024 MiB of retained WAL.",
			Attributes: map[string]schema.Attribute{
				"enabled": schema.BoolAttribute{
					Optional: true,
					MarkdownDescription: "`false` pauses the task: applies stop replaying changes, the replication slot " +
						"keeps the position, and the source retains WAL until it is `true` again (watch " +
						"`retained_wal_bytes`). Defaults to `true`.",
				},
				"warn_retained_wal_mb": schema.Int64Attribute{
					Optional: true,
					MarkdownDescription: "The plan warns when the task's slot holds more WAL than this many MiB on " +
						"the source. Defaults to `1024`.",
					Validators: []validator.Int64{int64validator.AtLeast(1)},
				},
			},
		},
		"confirmed_lsn": computedStr("CDC: commit LSN of the last source transaction applied to the target (the " +
			"replication slot's consistent point before any). Null in `full_load` mode."),
		"source_wal_lsn": computedStr("CDC: the source's WAL end when the task was last read."),
		"lag_bytes":      computedInt("CDC: WAL between the slot's confirmed position and the source's WAL end, in bytes."),
		"lag_seconds": schema.Float64Attribute{Computed: true, MarkdownDescription: "CDC: age of the oldest source " +
			"change not applied yet, in seconds; 0 when the target is caught up, -1 when unknown (the slot is in use or " +
			"could not be read)."},
		"pending_changes": computedInt("CDC: inserts, updates, deletes and truncates of the task's tables waiting in " +
			"the slot (estimated past the first 2000); -1 when unknown."),
		"retained_wal_bytes": computedInt("CDC: WAL the source keeps for the task's slot, in bytes."),
		"slot_health": computedStr("CDC: `pending` (the next apply creates the slot), `reserved`, `extended`, " +
			"`unreserved` (about to be invalidated by `max_slot_wal_keep_size`), `lost` (invalidated) or `missing` " +
			"(dropped outside Terraform). Null in `full_load` mode."),
	}
}

// cdcMode reports whether the task captures changes.
func (m taskModel) cdcMode() bool {
	return m.Mode.ValueString() == task.ModeFullLoadAndCDC || m.Mode.ValueString() == task.ModeCDCOnly
}

// cdcPaused reports cdc.enabled = false.
func (m taskModel) cdcPaused() bool {
	return m.CDC != nil && !m.CDC.Enabled.IsNull() && !m.CDC.Enabled.IsUnknown() && !m.CDC.Enabled.ValueBool()
}

func (m taskModel) warnRetainedBytes() int64 {
	mb := int64(defaultWarnRetainedWALMB)
	if m.CDC != nil && !m.CDC.WarnRetainedWALMB.IsNull() && !m.CDC.WarnRetainedWALMB.IsUnknown() {
		mb = m.CDC.WarnRetainedWALMB.ValueInt64()
	}
	return mb << 20
}

// setCDC records a look at the task's capture in the computed attributes.
func (m *taskModel) setCDC(st task.CDCState) {
	if !st.Enabled {
		m.setCDCNull()
		return
	}
	m.ConfirmedLSN = types.StringNull()
	if st.Started {
		m.ConfirmedLSN = types.StringValue(st.Checkpoint.String())
	}
	m.SourceWALLSN = types.StringValue(st.Slot.CurrentLSN.String())
	m.LagBytes = types.Int64Value(max(st.Slot.LagBytes, 0))
	m.RetainedWALBytes = types.Int64Value(max(st.Slot.RetainedBytes, 0))
	m.LagSeconds = types.Float64Value(st.LagSeconds())
	m.PendingChanges = types.Int64Value(st.EstimatedChanges())
	if !st.Slot.Exists {
		m.LagBytes, m.RetainedWALBytes = types.Int64Value(0), types.Int64Value(0)
	}
	m.SlotHealth = types.StringValue(st.Health())
}

// setCaughtUp records an apply that replayed everything committed up to
// progress.Until: nothing of that is pending, whatever came after.
func (m *taskModel) setCaughtUp(st task.CDCState, progress task.CDCProgress) {
	m.setCDC(st)
	m.ConfirmedLSN = types.StringValue(max(progress.Applied, st.Checkpoint).String())
	m.SourceWALLSN = types.StringValue(progress.Until.String())
	m.LagSeconds = types.Float64Value(0)
	m.PendingChanges = types.Int64Value(0)
}

func (m *taskModel) setCDCNull() {
	m.ConfirmedLSN, m.SourceWALLSN, m.SlotHealth = types.StringNull(), types.StringNull(), types.StringNull()
	m.LagBytes, m.PendingChanges, m.RetainedWALBytes = types.Int64Null(), types.Int64Null(), types.Int64Null()
	m.LagSeconds = types.Float64Null()
}

// unknownCDC marks the capture attributes the next apply computes.
func (m *taskModel) unknownCDC() {
	m.ConfirmedLSN, m.SourceWALLSN, m.SlotHealth = types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
	m.LagBytes, m.PendingChanges, m.RetainedWALBytes = types.Int64Unknown(), types.Int64Unknown(), types.Int64Unknown()
	m.LagSeconds = types.Float64Unknown()
}

// copyCDC keeps the capture attributes of the prior state.
func (m *taskModel) copyCDC(prior taskModel) {
	m.ConfirmedLSN, m.SourceWALLSN, m.SlotHealth = prior.ConfirmedLSN, prior.SourceWALLSN, prior.SlotHealth
	m.LagBytes, m.PendingChanges, m.RetainedWALBytes = prior.LagBytes, prior.PendingChanges, prior.RetainedWALBytes
	m.LagSeconds = prior.LagSeconds
}

// cdcSummary is the capture part of the plan's preview.
func cdcSummary(b *strings.Builder, spec task.Spec, m taskModel, pv *task.Preview) {
	st := pv.CDC
	if !st.Enabled {
		if st.Started || st.Slot.Exists {
			fmt.Fprintf(b, "\nCHANGE DATA CAPTURE STOPS: mode is now %s. Apply drops replication slot %s and publication %s on the source; "+
				"the target keeps its rows but no longer follows the source.\n", spec.Mode, cdc.SlotName(spec.Name), cdc.PublicationName(spec.Name))
		}
		return
	}
	b.WriteString("\nChange data capture: ")
	switch {
	case !st.Slot.Exists:
		fmt.Fprintf(b, "apply creates publication %s and replication slot %s on the source", cdc.PublicationName(spec.Name), cdc.SlotName(spec.Name))
		if spec.Mode == task.ModeCDCOnly {
			b.WriteString(", then replays every change committed after the slot's creation (cdc_only: no rows are copied; the target's tables must hold the source's rows as of then, or start empty).\n")
		} else {
			b.WriteString(", loads the tables from the slot's snapshot, and replays changes from its consistent point: no gap, no overlap.\n")
		}
		return
	case m.cdcPaused():
		fmt.Fprintf(b, "PAUSED (cdc.enabled = false). Slot %s keeps position %s; the source retains %s of WAL for it.\n",
			cdc.SlotName(spec.Name), st.Slot.ConfirmedFlush, humanBytes(st.Slot.RetainedBytes))
		return
	case st.Slot.Active:
		fmt.Fprintf(b, "slot %s is in use by another session (PID %d), perhaps another apply of this task: pending changes were not counted.\n",
			cdc.SlotName(spec.Name), st.Slot.ActivePID)
		return
	}
	switch {
	case st.CatchUpDue() && st.PendingKnown && st.Pending.Changes > 0:
		est := "about "
		if !st.Pending.More {
			est = ""
		}
		fmt.Fprintf(b, "CATCH-UP: %s%d changes in %s%d transactions are pending (%s of WAL; the oldest committed %s ago). ",
			est, st.EstimatedChanges(), est, estimatedTxns(st), humanBytes(st.Slot.LagBytes), st.Pending.Lag(st.ReadAt).Round(time.Second))
		b.WriteString("Apply replays them up to the source's WAL end read at its start, in source commit order, and confirms that position.\n")
	case st.CatchUpDue() && st.PendingKnown:
		fmt.Fprintf(b, "no change of the task's tables is pending, but the slot is %s behind the source's WAL end: apply confirms it so the source can recycle that WAL.\n",
			humanBytes(st.Slot.LagBytes))
	case st.CatchUpDue():
		fmt.Fprintf(b, "CATCH-UP: %s of WAL to read (pending changes not counted: %v). Apply replays them up to the source's WAL end read at its start.\n",
			humanBytes(st.Slot.LagBytes), st.PendingErr)
	case !pv.Done():
		fmt.Fprintf(b, "slot %s exists at %s; changes are replayed once the load is done.\n", cdc.SlotName(spec.Name), st.Slot.ConfirmedFlush)
	default:
		fmt.Fprintf(b, "caught up (confirmed %s; source at %s; nothing of the task's tables pending).\n", st.Checkpoint, st.Slot.CurrentLSN)
	}
}

// estimatedTxns scales the counted transactions like the changes.
func estimatedTxns(st task.CDCState) int64 {
	if st.Pending.Changes == 0 {
		return int64(st.Pending.Transactions)
	}
	return int64(float64(st.Pending.Transactions) * float64(st.EstimatedChanges()) / float64(st.Pending.Changes))
}

// cdcWarnings are the plan's warnings about the source's WAL.
func cdcWarnings(diags *diag.Diagnostics, spec task.Spec, m taskModel, pv *task.Preview) {
	st := pv.CDC
	if !st.Slot.Exists {
		return
	}
	if limit := m.warnRetainedBytes(); st.Slot.RetainedBytes > limit {
		diags.AddAttributeWarning(path.Root("cdc").AtName("warn_retained_wal_mb"), "Replication Slot Retains WAL",
			fmt.Sprintf("Replication slot %s of task %s keeps %s of WAL on the source (warning threshold %s). The source "+
				"cannot recycle it until the task catches up: apply the task (more often), or set cdc.enabled = true if "+
				"it is paused. If the source sets max_slot_wal_keep_size, a slot past it is invalidated and the task must reload.",
				cdc.SlotName(spec.Name), spec.Name, humanBytes(st.Slot.RetainedBytes), humanBytes(limit)))
	}
	if st.Slot.WALStatus == "unreserved" {
		diags.AddWarning("Replication Slot About to Be Invalidated",
			fmt.Sprintf("Replication slot %s of task %s holds WAL past max_slot_wal_keep_size (wal_status unreserved): "+
				"the source invalidates it at its next checkpoint unless the task catches up now. Apply the task, or raise max_slot_wal_keep_size.",
				cdc.SlotName(spec.Name), spec.Name))
	}
}
