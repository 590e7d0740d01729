package provider

import (
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

type taskModel struct {
	ID               types.String   `tfsdk:"id"`
	Name             types.String   `tfsdk:"name"`
	SourceEndpointID types.String   `tfsdk:"source_endpoint_id"`
	TargetEndpointID types.String   `tfsdk:"target_endpoint_id"`
	Mode             types.String   `tfsdk:"mode"`
	Tables           []taskTable    `tfsdk:"tables"`
	Parallelism      types.Int64    `tfsdk:"parallelism"`
	WaitFor          types.String   `tfsdk:"wait_for"`
	OnDestroy        types.String   `tfsdk:"on_destroy"`
	Fingerprint      types.String   `tfsdk:"fingerprint"`
	Phase            types.String   `tfsdk:"phase"`
	RowsCopied       types.Int64    `tfsdk:"rows_copied"`
	Progress         types.List     `tfsdk:"progress"`
	StartedAt        types.String   `tfsdk:"started_at"`
	FinishedAt       types.String   `tfsdk:"finished_at"`
	LastError        types.String   `tfsdk:"last_error"`
	CDC              *taskCDC       `tfsdk:"cdc"`
	ConfirmedLSN     types.String   `tfsdk:"confirmed_lsn"`
	SourceWALLSN     types.String   `tfsdk:"source_wal_lsn"`
	LagBytes         types.Int64    `tfsdk:"lag_bytes"`
	LagSeconds       types.Float64  `tfsdk:"lag_seconds"`
	PendingChanges   types.Int64    `tfsdk:"pending_changes"`
	RetainedWALBytes types.Int64    `tfsdk:"retained_wal_bytes"`
	SlotHealth       types.String   `tfsdk:"slot_health"`
	Timeouts         timeouts.Value `tfsdk:"timeouts"`
}

type taskCDC struct {
	Enabled           types.Bool  `tfsdk:"enabled"`
	WarnRetainedWALMB types.Int64 `tfsdk:"warn_retained_wal_mb"`
}

type taskTable struct {
	Source   types.String  `tfsdk:"source"`
	Target   types.String  `tfsdk:"target"`
	Where    types.String  `tfsdk:"where"`
	Columns  *taskColumns  `tfsdk:"columns"`
	DynamoDB *taskDynamoDB `tfsdk:"dynamodb"`
}

type taskColumns struct {
	Include   []types.String          `tfsdk:"include"`
	Exclude   []types.String          `tfsdk:"exclude"`
	Rename    map[string]types.String `tfsdk:"rename"`
	Transform map[string]types.String `tfsdk:"transform"`
}

type taskDynamoDB struct {
	PartitionKey types.String `tfsdk:"partition_key"`
	SortKey      types.String `tfsdk:"sort_key"`
}

var progressAttrTypes = map[string]attr.Type{
	"source": types.StringType, "target": types.StringType, "phase": types.StringType,
	"rows": types.Int64Type, "chunks": types.Int64Type, "chunks_done": types.Int64Type, "seconds": types.Float64Type,
}

// known reports whether every value the engine needs is known (plan time).
func (m taskModel) known() bool {
	if m.Name.IsUnknown() || m.SourceEndpointID.IsUnknown() || m.TargetEndpointID.IsUnknown() || m.Tables == nil {
		return false
	}
	for _, t := range m.Tables {
		if t.Source.IsUnknown() || t.Target.IsUnknown() || t.Where.IsUnknown() {
			return false
		}
		if c := t.Columns; c != nil {
			for _, v := range append(append([]types.String{}, c.Include...), c.Exclude...) {
				if v.IsUnknown() {
					return false
				}
			}
			for _, m := range []map[string]types.String{c.Rename, c.Transform} {
				for _, v := range m {
					if v.IsUnknown() {
						return false
					}
				}
			}
		}
	}
	return true
}

// rules translates the tables list into the engine's rules.
func (m taskModel) rules() []plan.Rule {
	rules := make([]plan.Rule, 0, len(m.Tables))
	for _, t := range m.Tables {
		r := plan.Rule{Source: t.Source.ValueString(), Target: t.Target.ValueString(), Where: t.Where.ValueString()}
		if c := t.Columns; c != nil {
			for _, v := range c.Include {
				r.Include = append(r.Include, v.ValueString())
			}
			for _, v := range c.Exclude {
				r.Exclude = append(r.Exclude, v.ValueString())
			}
			if len(c.Rename) > 0 {
				r.Rename = map[string]string{}
				for k, v := range c.Rename {
					r.Rename[k] = v.ValueString()
				}
			}
			if len(c.Transform) > 0 {
				r.Transform = map[string]string{}
				for k, v := range c.Transform {
					r.Transform[k] = v.ValueString()
				}
			}
		}
		rules = append(rules, r)
	}
	return rules
}

// setStatus records the engine's status in the computed attributes.
func (m *taskModel) setStatus(s enginecopy.Status) diag.Diagnostics {
	phase := s.Phase
	if !s.Exists || phase == "" {
		phase = "pending"
	}
	m.Phase = types.StringValue(phase)
	m.StartedAt = timeValue(s.StartedAt)
	m.FinishedAt = timeValue(s.FinishedAt)
	m.LastError = optString(s.LastError)
	var rows int64
	items := make([]attr.Value, 0, len(s.Tables))
	var diags diag.Diagnostics
	for _, t := range s.Tables {
		rows += t.Rows
		obj, d := types.ObjectValue(progressAttrTypes, map[string]attr.Value{
			"source": types.StringValue(t.Source), "target": types.StringValue(t.Target), "phase": types.StringValue(t.Phase),
			"rows": types.Int64Value(t.Rows), "chunks": types.Int64Value(int64(t.Chunks)), "chunks_done": types.Int64Value(int64(t.ChunksDone)),
			"seconds": types.Float64Value(loadSeconds(t.StartedAt, t.FinishedAt)),
		})
		diags.Append(d...)
		items = append(items, obj)
	}
	m.RowsCopied = types.Int64Value(rows)
	list, d := types.ListValue(types.ObjectType{AttrTypes: progressAttrTypes}, items)
	diags.Append(d...)
	m.Progress = list
	return diags
}

// loadSeconds is how long a table's load took; 0 until it finished.
func loadSeconds(started, finished time.Time) float64 {
	if started.IsZero() || finished.Before(started) {
		return 0
	}
	return finished.Sub(started).Seconds()
}

func timeValue(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// unknownStatus marks what the next apply will compute.
func unknownStatus(m *taskModel) {
	m.Phase = types.StringUnknown()
	m.RowsCopied = types.Int64Unknown()
	m.Progress = types.ListUnknown(types.ObjectType{AttrTypes: progressAttrTypes})
	m.StartedAt = types.StringUnknown()
	m.FinishedAt = types.StringUnknown()
	m.LastError = types.StringUnknown()
}
