package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/task"
)

var (
	_ resource.ResourceWithConfigure   = (*taskResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*taskResource)(nil)
	_ resource.ResourceWithImportState = (*taskResource)(nil)
)

const (
	taskApplyTimeout   = 2 * time.Hour
	taskPreviewTimeout = 2 * time.Minute
	taskDeleteTimeout  = 10 * time.Minute
)

// taskResource is migration_task: a migration moved forward by every apply.
type taskResource struct {
	data *providerData
}

// NewTaskResource is the migration_task constructor.
func NewTaskResource() resource.Resource { return &taskResource{} }

func (r *taskResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_task"
}

func (r *taskResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

var taskNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (r *taskResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	computedStr := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A migration from a source endpoint to a target endpoint, moved forward by `terraform apply`.\n\n" +
			"The plan previews it as warnings a reviewer reads in a pull request: every table with its estimated rows " +
			"and size, the DDL that will create what the target lacks, every risky mapping, and whether a change means " +
			"an in-place update or a reload. Apply copies the selected tables from one consistent snapshot with " +
			"`parallelism` workers, recording each finished chunk on the target in the same transaction as its rows " +
			"(schema `_migration`), so a crash, a timeout or a killed process loses nothing and duplicates nothing: the " +
			"next apply copies only what is left. When time runs out the task saves its progress and ends with a " +
			"warning; the next plan shows it pending.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, MarkdownDescription: "The task's name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Stable identity of the task: its checkpoints on the target (and, with CDC, its " +
					"replication slot and publication) are keyed by it, and a task whose name already has checkpoints " +
					"resumes them. Lowercase letters, digits and underscores, at most 63. Changing it replaces the task.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringvalidator.RegexMatches(taskNamePattern, "must be lowercase letters, digits and underscores, starting with a letter or underscore, at most 63 characters")},
			},
			"source_endpoint_id": schema.StringAttribute{
				Required: true, MarkdownDescription: "The `id` of the source `migration_endpoint`.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"target_endpoint_id": schema.StringAttribute{
				Required: true, MarkdownDescription: "The `id` of the target `migration_endpoint`.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"mode": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(task.ModeFullLoad),
				MarkdownDescription: "`full_load` (copy once), `full_load_and_cdc` (copy from the snapshot of a new " +
					"replication slot, then replay the source's changes from the slot's consistent point on every apply) or " +
					"`cdc_only` (replay changes committed after the slot's creation into tables that already hold the " +
					"source's rows, or start empty; nothing is copied). Defaults to `full_load`. PostgreSQL to PostgreSQL. " +
					"Turning a loaded `full_load` task to `full_load_and_cdc` reloads it; turning a CDC task to " +
					"`full_load` drops its slot and publication.",
				Validators: []validator.String{stringvalidator.OneOf(task.ModeFullLoad, task.ModeFullLoadAndCDC, task.ModeCDCOnly)},
			},
			"tables": schema.ListNestedAttribute{
				Required: true,
				MarkdownDescription: "What to copy and how it maps. An exact `source` overrides a `schema.*` wildcard for " +
					"its table; a table matched by no entry is not copied; a partitioned table is copied once, as its root.",
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"source": schema.StringAttribute{
						Required: true, MarkdownDescription: "`schema.table`, or `schema.*` for every table of the schema.",
						Validators: []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^[^.\s]+\.[^.\s]+$`), "must be schema.table or schema.*")},
					},
					"target": schema.StringAttribute{
						Optional: true, MarkdownDescription: "`table` (in the source's schema) or `schema.table`. Defaults to the source's schema and name.",
					},
					"where": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "SQL condition on the source table selecting the rows to copy, e.g. " +
							"`created_at >= '2024-01-01'` or `random() < 0.05` for a sample. Checked at plan time by the source's own parser.",
					},
					"columns": schema.SingleNestedAttribute{
						Optional: true, MarkdownDescription: "Column selection and mapping.",
						Attributes: map[string]schema.Attribute{
							"include":   schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Copy only these columns."},
							"exclude":   schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Do not copy these columns."},
							"rename":    schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Source column → target column name."},
							"transform": schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Source column → `sha256` (hex digest: joins still match), `redact` (masked), or `cast:TYPE` (e.g. `cast:bigint`)."},
						},
					},
					"dynamodb": schema.SingleNestedAttribute{
						Optional: true, MarkdownDescription: "Item layout for a DynamoDB target (arrives with DynamoDB targets).",
						Attributes: map[string]schema.Attribute{
							"partition_key": schema.StringAttribute{Required: true, MarkdownDescription: "Column that becomes the partition key."},
							"sort_key":      schema.StringAttribute{Optional: true, MarkdownDescription: "Column that becomes the sort key."},
						},
					},
				}},
			},
			"parallelism": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(4),
				MarkdownDescription: "Chunks copied at once, 1–64. Defaults to `4`. Each worker holds one connection on each side. Change data capture applies a batch of changes in up to two target transactions at once, never more than `parallelism`.",
				Validators:          []validator.Int64{int64validator.Between(1, 64)},
			},
			"wait_for": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("full_load"),
				MarkdownDescription: "What apply waits for: `full_load` (the copy, keys, indexes and foreign keys are done), " +
					"`none` (create the target tables and record the task; copy nothing yet) or `cdc_synced` (CDC modes: " +
					"also replay the changes made during the load, up to the source's WAL end read after it). Defaults to " +
					"`full_load`. Once the load is done, every apply of a CDC task catches up, whatever `wait_for` says.",
				Validators: []validator.String{stringvalidator.OneOf("none", "full_load", "cdc_synced")},
			},
			"on_destroy": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("keep_target"),
				MarkdownDescription: "`keep_target` (destroy forgets the task; target data stays) or `drop_target` (also drops the tables the task loaded). Defaults to `keep_target`.",
				Validators:          []validator.String{stringvalidator.OneOf("keep_target", "drop_target")},
			},
			"fingerprint": computedStr("Digest of what defines the copied data (tables, targets, where, columns and transforms). When it changes the task reloads: its tables are dropped and copied again."),
			"phase":       computedStr("`pending`, `loading`, `indexing` or `done`."),
			"rows_copied": schema.Int64Attribute{Computed: true, MarkdownDescription: "Rows copied so far, all tables."},
			"progress": schema.ListNestedAttribute{
				Computed: true, MarkdownDescription: "Per table: source, target, phase, rows copied, chunks and chunks done.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"source": computedStr("Source table."), "target": computedStr("Target table."), "phase": computedStr("`pending`, `created`, `loading`, `loaded` or `indexed`."),
					"rows":        schema.Int64Attribute{Computed: true, MarkdownDescription: "Rows copied."},
					"chunks":      schema.Int64Attribute{Computed: true, MarkdownDescription: "Chunks the table is split into."},
					"chunks_done": schema.Int64Attribute{Computed: true, MarkdownDescription: "Chunks copied."},
					"seconds":     schema.Float64Attribute{Computed: true, MarkdownDescription: "Seconds the table's load took, keys and indexes included; 0 until it finished."},
				}},
			},
			"started_at":  computedStr("When the load started (RFC 3339)."),
			"finished_at": computedStr("When the load finished (RFC 3339)."),
			"last_error":  computedStr("The error that stopped the last apply, if any."),
			"timeouts":    timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
	for name, a := range cdcAttributes() {
		resp.Schema.Attributes[name] = a
	}
}

// taskSpec resolves the model's endpoints and rules into an engine task.
func (r *taskResource) taskSpec(m taskModel) (task.Spec, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := task.Spec{Name: m.Name.ValueString(), Mode: m.Mode.ValueString(), Rules: m.rules(), Parallelism: int(m.Parallelism.ValueInt64())}
	for _, side := range []struct {
		attr string
		id   types.String
		spec *endpoint.Spec
	}{{"source_endpoint_id", m.SourceEndpointID, &s.Source}, {"target_endpoint_id", m.TargetEndpointID, &s.Target}} {
		spec, _, err := r.data.resolveEndpoint(side.id.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root(side.attr), "Invalid Endpoint ID",
				fmt.Sprintf("%s\n\nSet %s to the id of a migration_endpoint, e.g. migration_endpoint.legacy.id.", err, side.attr))
			continue
		}
		if spec.Postgres == nil {
			diags.AddAttributeError(path.Root(side.attr), "Unsupported Endpoint",
				fmt.Sprintf("%s is a %s endpoint; this version of migration_task moves PostgreSQL to PostgreSQL.", side.id.ValueString(), spec.Kind()))
			continue
		}
		*side.spec = spec
	}
	if m.WaitFor.ValueString() == "cdc_synced" && !m.cdcMode() {
		diags.AddAttributeError(path.Root("wait_for"), "Invalid Wait Condition",
			"wait_for = \"cdc_synced\" needs a CDC mode; with mode = \"full_load\" use \"full_load\" or \"none\", "+
				"or set mode = \"full_load_and_cdc\".")
	}
	for i, t := range m.Tables {
		if t.DynamoDB != nil {
			diags.AddAttributeError(path.Root("tables").AtListIndex(i).AtName("dynamodb"), "DynamoDB Layout on a PostgreSQL Target",
				"tables[].dynamodb describes items of a DynamoDB target; this task's target is PostgreSQL. Remove it.")
		}
	}
	return s, diags
}

// problemDiags turns plan problems into attribute errors on the rule at fault.
func problemDiags(ps []plan.Problem) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, p := range ps {
		if p.Attribute != "" {
			diags.AddAttributeError(path.Root(p.Attribute), p.Summary, p.Detail)
			continue
		}
		at := path.Root("tables")
		if p.Rule >= 0 {
			at = at.AtListIndex(p.Rule)
			for _, step := range strings.Split(p.Field, ".") {
				if step != "" && step != "tables" {
					at = at.AtName(step)
				}
			}
		}
		diags.AddAttributeError(at, p.Summary, "Attribute "+at.String()+": "+p.Detail)
	}
	return diags
}

// ModifyPlan previews the task: read-only, bounded, nothing written anywhere.
func (r *taskResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		var state taskModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if state.OnDestroy.ValueString() == "drop_target" {
			resp.Diagnostics.AddWarning("Destroy Drops Target Tables",
				fmt.Sprintf("Task %s has on_destroy = \"drop_target\": destroying it drops every table it loaded on the target.", state.Name.ValueString()))
		}
		r.warnUnconsumed(ctx, &resp.Diagnostics, state, "Destroying", "destroy")
		return
	}
	var m taskModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !m.known() {
		return
	}
	m.ID = m.Name
	spec, diags := r.taskSpec(m)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, taskPreviewTimeout)
	defer cancel()
	var prior *taskModel
	if !req.State.Raw.IsNull() {
		prior = &taskModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
	}
	if prior != nil && prior.Name.ValueString() != m.Name.ValueString() {
		r.warnUnconsumed(ctx, &resp.Diagnostics, *prior, "Replacing", "replace")
	}
	started := time.Now()
	pv, err := spec.Preview(ctx)
	if err != nil {
		if prior != nil && prior.Phase.ValueString() == "done" {
			// A finished task must not break every plan once its source is
			// retired (the usual end of a migration): say so, change nothing.
			resp.Diagnostics.AddWarning("Migration Task Not Previewed",
				fmt.Sprintf("Task %s is done, and its endpoints could not be read to preview it: %v\n\n"+
					"Nothing changes for the task unless its configuration changed.", spec.Name, err))
			return
		}
		r.addTaskError(&resp.Diagnostics, "Unable to Preview Migration Task", spec, err)
		return
	}
	tflog.Debug(ctx, "task previewed", map[string]any{"task": spec.Name, "tables": len(pv.Plan.Tables), "elapsed_ms": time.Since(started).Milliseconds()})
	if len(pv.Problems) > 0 {
		resp.Diagnostics.Append(problemDiags(pv.Problems)...)
		return
	}
	m.Fingerprint = types.StringValue(pv.Fingerprint)
	title, text := previewSummary(spec, pv, prior)
	var b strings.Builder
	b.WriteString(text)
	cdcSummary(&b, spec, m, pv)
	resp.Diagnostics.AddWarning(title, b.String())
	cdcWarnings(&resp.Diagnostics, spec, m, pv)
	if b := pv.CDC.Broken; b != nil {
		// Not an error: it would refuse the destroy or replace that is the
		// way out. The plan shows an update, and its apply fails with it.
		resp.Diagnostics.AddAttributeWarning(path.Root(b.Attribute), b.Summary,
			b.Detail+"\n\nUntil then every apply of this task fails with this message.")
	}
	// The framework leaves computed attributes unknown when the
	// configuration changed: an update is planned anyway.
	configChanged := m.Phase.IsUnknown()
	// An unfinished task plans an update, so that the next apply resumes it
	// (unless the user asked apply not to copy); so does a CDC task whose
	// source has changes the target lacks.
	switch {
	case prior == nil || pv.Reload || (!pv.Done() && m.WaitFor.ValueString() != "none"):
		unknownStatus(&m)
		m.unknownCDC()
		if !m.cdcMode() {
			m.setCDCNull()
		}
	case pv.Done():
		// An in-place change of a finished task copies nothing: its status
		// stays as it is, and the plan says so.
		m.Phase, m.RowsCopied, m.Progress = prior.Phase, prior.RowsCopied, prior.Progress
		m.StartedAt, m.FinishedAt, m.LastError = prior.StartedAt, prior.FinishedAt, prior.LastError
		switch {
		case !m.cdcMode():
			m.setCDCNull() // an update when the task leaves a CDC mode
		case configChanged || pv.CDC.Broken != nil || (!m.cdcPaused() && pv.CDC.CatchUpDue()):
			m.unknownCDC()
		default:
			m.copyCDC(*prior)
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, m)...)
}

// warnUnconsumed warns at plan time when destroying or replacing a CDC task
// would drop a slot that still holds changes the target has not applied.
func (r *taskResource) warnUnconsumed(ctx context.Context, diags *diag.Diagnostics, state taskModel, doing, verb string) {
	if !state.cdcMode() {
		return
	}
	spec, d := r.taskSpec(state)
	if d.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, taskPreviewTimeout)
	defer cancel()
	st, err := spec.CDC(ctx, true)
	if err != nil {
		diags.AddWarning("Replication Slot Not Checked",
			fmt.Sprintf("%s task %s drops its replication slot %s, which could not be read to count the changes it still holds: %v",
				doing, spec.Name, cdc.SlotName(spec.Name), err))
		return
	}
	if !st.Slot.Exists || st.EstimatedChanges() == 0 {
		return
	}
	count := "an unknown number of"
	if n := st.EstimatedChanges(); n > 0 {
		count = fmt.Sprintf("%d", n)
		if st.Pending.More {
			count = "about " + count
		}
	}
	diags.AddWarning("Replication Slot Holds Unapplied Changes",
		fmt.Sprintf("%s task %s drops replication slot %s, which still holds %s changes (%s of WAL) that the target "+
			"has not applied: they will never reach the target. To keep them, apply the task first (it catches up), then %s it.",
			doing, spec.Name, cdc.SlotName(spec.Name), count, humanBytes(st.Slot.LagBytes), verb))
}

// previewSummary is the plan warning a reviewer reads.
func previewSummary(spec task.Spec, pv *task.Preview, prior *taskModel) (string, string) {
	var b strings.Builder
	var rows, bytes int64
	for _, t := range pv.Plan.Tables {
		if t.Source.EstimatedRows > 0 {
			rows += t.Source.EstimatedRows
		}
		bytes += t.Source.Bytes
	}
	switch {
	case prior == nil && pv.Status.Exists:
		fmt.Fprintf(&b, "Task %s already has checkpoints on the target (phase %s): apply resumes them.\n", spec.Name, pv.Status.Phase)
	case pv.Reload && pv.ReloadReason != "":
		fmt.Fprintf(&b, "RELOAD: %s. Apply drops the %d tables this task loaded and copies them again from a new replication slot's snapshot.\n",
			pv.ReloadReason, len(pv.Status.Tables))
	case pv.Reload:
		fmt.Fprintf(&b, "RELOAD: the mapping changed (fingerprint %s → %s). Apply drops the %d tables this task loaded and copies them again.\n",
			short(pv.Status.Fingerprint), short(pv.Fingerprint), len(pv.Status.Tables))
	case prior != nil && pv.Done():
		fmt.Fprintf(&b, "Task %s is done; a change here is in place (no data is copied again).\n", spec.Name)
	case prior != nil:
		done, total := 0, 0
		for _, t := range pv.Status.Tables {
			done += t.ChunksDone
			total += t.Chunks
		}
		fmt.Fprintf(&b, "Task %s is %s: %d of %d chunks copied. Apply resumes from the last checkpoint.\n", spec.Name, orPending(pv.Status.Phase), done, total)
	}
	what := "Full load"
	switch spec.Mode {
	case task.ModeFullLoadAndCDC:
		what = "Full load and change data capture"
	case task.ModeCDCOnly:
		what = "Change data capture only (no rows copied)"
	}
	fmt.Fprintf(&b, "%s of %d tables, about %d rows, %s, from %s to %s:\n", what, len(pv.Plan.Tables), rows, humanBytes(bytes), spec.Source.Target(), spec.Target.Target())
	for _, t := range pv.Plan.Tables {
		state := "create"
		if t.Exists {
			state = "existing table"
		}
		fmt.Fprintf(&b, "\n  %s → %s (%s): about %d rows, %s", t.Source.QualifiedName(), t.Target, state, max(t.Source.EstimatedRows, 0), humanBytes(t.Source.Bytes))
		if t.Where != "" {
			fmt.Fprintf(&b, ", where %s", t.Where)
		}
		if len(t.Key) == 0 {
			b.WriteString(", chunked by block ranges (no key)")
		}
		for _, r := range t.Risks {
			fmt.Fprintf(&b, "\n    ! %s", r.Message)
		}
		for _, ddl := range append(append(append([]string{}, t.CreateDDL...), t.IndexDDL...), t.ForeignKeyDDL...) {
			fmt.Fprintf(&b, "\n    %s", oneLine(ddl))
		}
	}
	return "Migration Task Preview", b.String()
}

func orPending(p string) string {
	if p == "" {
		return "pending"
	}
	return p
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "(none)"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
}

func (r *taskResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.run(ctx, req.Plan, &resp.State, &resp.Diagnostics, timeouts.Value.Create, true)
}

func (r *taskResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.run(ctx, req.Plan, &resp.State, &resp.Diagnostics, timeouts.Value.Update, false)
}

// run is create and update: move the task forward within the timeout. When
// time runs out, or the load stops on an error after it started, progress is
// saved and apply ends with a warning, not an error: a failed create would
// taint the task, and replacing it would throw the copy away. A change the
// target cannot take during an update's catch-up is an error (the task
// stops there, its checkpoint saved).
func (r *taskResource) run(ctx context.Context, planned tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics,
	timeout func(timeouts.Value, context.Context, time.Duration) (time.Duration, diag.Diagnostics), creating bool) {
	var m taskModel
	diags.Append(planned.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	limit, d := timeout(m.Timeouts, ctx, taskApplyTimeout)
	diags.Append(d...)
	spec, d := r.taskSpec(m)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	ctx = tflog.SetField(ctx, "task", spec.Name)
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	progress := newProgressLog(ctx)
	tflog.Info(ctx, "moving the task forward", map[string]any{"mode": spec.Mode, "parallelism": spec.Parallelism, "wait_for": m.WaitFor.ValueString(), "timeout": limit.String()})
	opts := task.RunOptions{PrepareOnly: m.WaitFor.ValueString() == "none", Progress: progress.event}
	var (
		status   enginecopy.Status
		caughtUp task.CDCProgress
		pv       *task.Preview
		err      error
	)
	if m.cdcMode() {
		opts.CDC = task.CDCOptions{CatchUpAfterLoad: m.WaitFor.ValueString() == "cdc_synced", Paused: m.cdcPaused(), Batch: progress.batch}
		status, caughtUp, pv, err = spec.RunCDC(runCtx, opts)
	} else {
		status, pv, err = spec.Run(runCtx, opts)
	}
	m.ID = m.Name
	if pv != nil && pv.Fingerprint != "" {
		m.Fingerprint = types.StringValue(pv.Fingerprint)
	}
	diags.Append(m.setStatus(status)...)
	r.recordCDC(ctx, spec, &m, caughtUp)
	loaded := status.Phase == enginecopy.PhaseDone
	switch {
	case err == nil:
		diags.AddWarning("Migration Task Applied", progress.summary(status, caughtUp))
	case errors.Is(err, context.DeadlineExceeded) && runCtx.Err() != nil:
		what := "Full Load Not Finished"
		if loaded {
			what = "Catch-Up Not Finished"
		}
		diags.AddWarning(what,
			fmt.Sprintf("The %s timeout ended before task %s finished; its progress is saved on the target. "+
				"The next plan shows the task pending and the next apply resumes from the last checkpoint.\n\n%s",
				limit, spec.Name, progress.summary(status, caughtUp)))
	case pv == nil || len(pv.Problems) > 0 || !status.Exists:
		// Nothing was written: an ordinary error.
		if pv != nil && len(pv.Problems) > 0 {
			diags.Append(problemDiags(pv.Problems)...)
		} else {
			r.addTaskError(diags, "Unable to Run Migration Task", spec, err)
		}
		return
	case loaded && m.cdcMode() && !creating:
		m.LastError = types.StringValue(err.Error())
		diags.AddError("Change Data Capture Stopped",
			fmt.Sprintf("Task %s stopped replaying the source's changes: %s\n\nEverything before that transaction is applied "+
				"and confirmed; the next apply retries from there. Fix the target (or the mapping) so it can take the change.\n\n%s",
				spec.Name, err, progress.summary(status, caughtUp)))
	default:
		m.LastError = types.StringValue(err.Error())
		diags.AddWarning("Migration Task Stopped",
			fmt.Sprintf("Task %s stopped on an error; its progress is saved on the target and the next apply "+
				"resumes from the last checkpoint.\n\nError: %s", spec.Name, err))
	}
	diags.Append(state.Set(ctx, m)...)
}

// recordCDC fills the capture attributes the plan left unknown after an
// apply: from the catch-up when there was one (nothing up to its WAL end is
// pending), else from a fresh look at the slot.
func (r *taskResource) recordCDC(ctx context.Context, spec task.Spec, m *taskModel, caughtUp task.CDCProgress) {
	if !m.ConfirmedLSN.IsUnknown() {
		return
	}
	if !m.cdcMode() {
		m.setCDCNull()
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), taskPreviewTimeout)
	defer cancel()
	st, err := spec.CDC(ctx, caughtUp.Until == 0)
	if err != nil {
		tflog.Warn(ctx, "replication slot not read after apply", map[string]any{"error": err.Error()})
		st = task.CDCState{Enabled: true, Slot: cdc.SlotStatus{CurrentLSN: caughtUp.Until}, Checkpoint: caughtUp.Applied, Started: caughtUp.Until != 0}
	}
	if caughtUp.Until != 0 {
		m.setCaughtUp(st, caughtUp)
		return
	}
	m.setCDC(st)
}

func (r *taskResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m taskModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := r.taskSpec(m)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, taskPreviewTimeout)
	defer cancel()
	status, err := spec.Status(ctx)
	if err != nil {
		// The target's password may not be known yet in this walk; the plan reads the status again.
		tflog.Debug(ctx, "task status not refreshed", map[string]any{"task": spec.Name, "error": err.Error()})
		return
	}
	resp.Diagnostics.Append(m.setStatus(status)...)
	if m.cdcMode() {
		if st, err := spec.CDC(ctx, true); err != nil {
			tflog.Debug(ctx, "replication slot not refreshed", map[string]any{"task": spec.Name, "error": err.Error()})
		} else {
			m.setCDC(st)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *taskResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m taskModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	limit, d := m.Timeouts.Delete(ctx, taskDeleteTimeout)
	resp.Diagnostics.Append(d...)
	spec, d := r.taskSpec(m)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	drop := m.OnDestroy.ValueString() == "drop_target"
	if err := spec.Delete(ctx, drop); err != nil {
		if ce, ok := engine.AsConnectError(err); ok && !drop && (ce.Kind == engine.ConnectDatabaseMissing) {
			return // the target is gone, and the records with it
		}
		r.addTaskError(&resp.Diagnostics, "Unable to Delete Migration Task", spec, err)
	}
}

// ImportState adopts a task by name; the next plan fills in its configuration.
func (r *taskResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// addTaskError explains an engine error, naming the endpoint and what to do.
func (r *taskResource) addTaskError(diags *diag.Diagnostics, summary string, spec task.Spec, err error) {
	if _, ok := engine.AsConnectError(err); ok {
		side, attr := spec.Source, "source_endpoint_id"
		if strings.HasPrefix(err.Error(), "target") {
			side, attr = spec.Target, "target_endpoint_id"
		}
		if ce, _ := engine.AsConnectError(err); ce.Kind == engine.ConnectAuthFailed && side.Postgres != nil {
			if _, known := r.data.credentials.password(side.ID(), side.Postgres); !known {
				diags.AddAttributeError(path.Root(attr), summary, fmt.Sprintf("%s\n\nError: %s", passwordHint(side), err))
				return
			}
		}
		addConnectError(diags, summary, side, err)
		return
	}
	diags.AddError(summary, fmt.Sprintf("Task %s: %s", spec.Name, err))
}

// progressLog logs each finished chunk and sums up per table.
type progressLog struct {
	ctx     context.Context
	started time.Time
}

func newProgressLog(ctx context.Context) *progressLog {
	return &progressLog{ctx: ctx, started: time.Now()}
}

func (p *progressLog) event(e enginecopy.Event) {
	fields := map[string]any{"table": e.Table, "chunk": e.Chunk, "chunks": e.Chunks, "rows": e.Rows}
	if s := e.Elapsed.Seconds(); s > 0 {
		fields["rows_per_s"] = int64(float64(e.Rows) / s)
	}
	msg := e.Message
	if msg == "" {
		msg = "chunk copied"
	}
	tflog.Info(p.ctx, msg, fields)
}

// batch logs each batch of source transactions applied.
func (p *progressLog) batch(c task.CDCProgress) {
	fields := map[string]any{"transactions": c.Transactions, "changes": c.Changes, "applied_lsn": c.Applied.String(), "until_lsn": c.Until.String()}
	if s := time.Since(p.started).Seconds(); s > 0 {
		fields["changes_per_s"] = int64(float64(c.Changes) / s)
	}
	tflog.Info(p.ctx, "changes applied", fields)
}

// summary is the per-table report apply prints, and the catch-up's.
func (p *progressLog) summary(s enginecopy.Status, c task.CDCProgress) string {
	var b strings.Builder
	elapsed := time.Since(p.started)
	var rows int64
	for _, t := range s.Tables {
		rows += t.Rows
	}
	fmt.Fprintf(&b, "Task %s: %s, %d rows in %s this apply", s.Task, orPending(s.Phase), rows, elapsed.Round(time.Millisecond))
	if secs := elapsed.Seconds(); secs > 0 && rows > 0 {
		fmt.Fprintf(&b, " (%.0f rows/s)", float64(rows)/secs)
	}
	b.WriteString(".")
	for _, t := range s.Tables {
		d := t.FinishedAt.Sub(t.StartedAt)
		line := fmt.Sprintf("\n  %-32s %-8s %10d rows  %3d/%d chunks", t.Target, t.Phase, t.Rows, t.ChunksDone, t.Chunks)
		if !t.StartedAt.IsZero() && !t.FinishedAt.IsZero() && d > 0 {
			line += fmt.Sprintf("  %s  %.0f rows/s", d.Round(time.Millisecond), float64(t.Rows)/d.Seconds())
		}
		b.WriteString(line)
	}
	if c.Until != 0 {
		fmt.Fprintf(&b, "\nChange data capture: %d changes in %d transactions applied", c.Changes, c.Transactions)
		if secs := elapsed.Seconds(); secs > 0 && c.Changes > 0 {
			fmt.Fprintf(&b, " (%.0f changes/s this apply)", float64(c.Changes)/secs)
		}
		fmt.Fprintf(&b, "; last commit applied at %s, the source's WAL end at the start of the catch-up %s.", c.Applied, c.Until)
	}
	return b.String()
}
