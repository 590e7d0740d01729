// Package task runs a migration task end to end on the engine: it reads the
// source and target catalogs, checks the task's rules with the source's own
// parser, builds the plan, tells an in-place change from a reload, and drives
// the full load with its checkpoints. Preview is read-only (plan time); Run
// writes (apply time).
package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/cdc"
	enginecopy "github.com/migrationworks/terraform-provider-migration/internal/engine/copy"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// Modes a task can run in.
const (
	ModeFullLoad       = "full_load"
	ModeFullLoadAndCDC = "full_load_and_cdc"
	ModeCDCOnly        = "cdc_only"
)

// Spec is a task as configured.
type Spec struct {
	Name        string
	Source      endpoint.Spec
	Target      endpoint.Spec
	Mode        string
	Rules       []plan.Rule
	Parallelism int
}

// Preview is what a read-only look at both sides learned.
type Preview struct {
	Plan        *plan.Plan
	Fingerprint string
	// Status is what the target's control records say about this task.
	Status enginecopy.Status
	// Reload is true when the task has records made for another mapping:
	// its tables are dropped and copied again.
	Reload bool
	// ReloadReason says why, when it is not a changed mapping.
	ReloadReason string
	// Problems are bad input; nothing may be written while there are any.
	Problems []plan.Problem
	// CDC is the state of the task's change data capture; see inspectCDC.
	CDC CDCState
}

// Done reports whether the load is complete for the current mapping.
func (p *Preview) Done() bool {
	return p.Status.Exists && !p.Reload && p.Status.Phase == "done"
}

// pools opens both endpoints. Each needs one connection per worker, and
// the source one more for the exported snapshot.
func pools(ctx context.Context, s Spec, workers int) (src, tgt *pgxpool.Pool, err error) {
	if s.Source.Postgres == nil || s.Target.Postgres == nil {
		return nil, nil, errPostgresOnly
	}
	sc, tc := *s.Source.Postgres, *s.Target.Postgres
	sc.MaxConns, tc.MaxConns = int32(workers+2), int32(workers+1)
	src, tgt, _, err = openBoth(ctx, sc, tc, func(ctx context.Context, c postgres.Config) (*pgxpool.Pool, func(), error) {
		p, err := postgres.Connect(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		return p, p.Close, nil
	})
	return src, tgt, err
}

// borrow takes both endpoints' shared pools (postgres.Borrow) for a
// read-only look; giveBack returns them.
func borrow(ctx context.Context, s Spec) (src, tgt *pgxpool.Pool, giveBack func(), err error) {
	if s.Source.Postgres == nil || s.Target.Postgres == nil {
		return nil, nil, nil, errPostgresOnly
	}
	return openBoth(ctx, *s.Source.Postgres, *s.Target.Postgres, postgres.Borrow)
}

var errPostgresOnly = errors.New("this version moves PostgreSQL to PostgreSQL: both endpoints must be postgres endpoints")

// openBoth opens the source's and the target's pools side by side (each
// costs round trips to its own server). On failure it closes what it
// opened, and the source's error wins, as when they were opened in turn.
func openBoth(ctx context.Context, sc, tc postgres.Config,
	open func(context.Context, postgres.Config) (*pgxpool.Pool, func(), error)) (src, tgt *pgxpool.Pool, done func(), err error) {
	tgtCtx, cancelTgt := context.WithCancel(ctx)
	defer cancelTgt()
	var (
		tgtDone func()
		tgtErr  error
		opened  = make(chan struct{})
	)
	go func() {
		defer close(opened)
		tgt, tgtDone, tgtErr = open(tgtCtx, tc)
	}()
	src, srcDone, srcErr := open(ctx, sc)
	if srcErr != nil {
		cancelTgt() // no need to wait out the target's connect timeout
	}
	<-opened
	switch {
	case srcErr != nil:
		if tgtErr == nil {
			tgtDone()
		}
		return nil, nil, nil, fmt.Errorf("source: %w", srcErr)
	case tgtErr != nil:
		srcDone()
		return nil, nil, nil, fmt.Errorf("target: %w", tgtErr)
	}
	return src, tgt, func() { srcDone(); tgtDone() }, nil
}

// Preview reads both sides and builds the plan without writing anything.
func (s Spec) Preview(ctx context.Context) (*Preview, error) {
	src, tgt, giveBack, err := borrow(ctx, s)
	if err != nil {
		return nil, err
	}
	defer giveBack()
	// Counting the slot's backlog can take longer than reading both
	// catalogs: it starts now and runs alongside them.
	stop := s.countAhead(ctx, src)
	defer stop()
	pv, err := s.preview(ctx, src, tgt)
	if err != nil || len(pv.Problems) > 0 {
		return pv, err
	}
	return pv, s.inspectCDC(ctx, src, tgt, pv, true)
}

func (s Spec) preview(ctx context.Context, src, tgt *pgxpool.Pool) (*Preview, error) {
	if len(s.Rules) == 0 {
		return &Preview{Problems: []plan.Problem{{Rule: -1, Field: "tables", Summary: "No Tables Selected",
			Detail: "tables is empty: add at least one entry, such as { source = \"public.*\" }."}}}, nil
	}
	// The source's catalog is read while the target is: each side costs
	// round trips to its own server.
	var (
		srcCat *catalog.Catalog
		srcErr error
		read   = make(chan struct{})
	)
	go func() {
		defer close(read)
		srcCat, srcErr = postgres.ReadCatalog(ctx, src, postgres.Filter{Schemas: sourceSchemas(s.Rules)})
	}()
	status, statusErr := enginecopy.ReadStatus(ctx, tgt, s.Name)
	var tgtCat *catalog.Catalog
	var tgtErr error
	if statusErr == nil {
		tgtCat, tgtErr = postgres.ReadCatalog(ctx, tgt, postgres.Filter{Schemas: targetSchemas(s.Rules)})
	}
	<-read
	switch {
	case srcErr != nil:
		return nil, fmt.Errorf("reading the source catalog: %w", srcErr)
	case statusErr != nil:
		return nil, fmt.Errorf("reading the task's records on the target: %w", statusErr)
	case tgtErr != nil:
		return nil, fmt.Errorf("reading the target catalog: %w", tgtErr)
	}
	// Tables this task created are its own: plan them as if absent, so the
	// plan does not depend on how far the task got.
	owned := map[string]bool{}
	for _, t := range status.Tables {
		owned[t.Target] = true
	}
	tgtCat.Tables = slices.DeleteFunc(tgtCat.Tables, func(t catalog.Table) bool { return owned[t.QualifiedName()] })

	p, problems := plan.Build(srcCat, tgtCat, s.Rules)
	pv := &Preview{Plan: p, Status: status, Problems: problems}
	if len(problems) > 0 {
		return pv, nil
	}
	pv.Problems = append(pv.Problems, validateSelects(ctx, src, p, s.Rules)...)
	if s.Mode != ModeCDCOnly {
		// cdc_only follows the source from now on, into tables that
		// already hold its rows (loaded by other means) or start empty.
		pv.Problems = append(pv.Problems, foreignRows(ctx, tgt, p)...)
	}
	pv.Fingerprint = p.Fingerprint()
	pv.Reload = status.Exists && status.Fingerprint != "" && status.Fingerprint != pv.Fingerprint
	return pv, nil
}

// validateSelects checks every where clause and transform with the source's
// own parser (EXPLAIN), so a typo fails at plan time rather than mid-copy.
func validateSelects(ctx context.Context, src *pgxpool.Pool, p *plan.Plan, rules []plan.Rule) []plan.Problem {
	var problems []plan.Problem
	for _, t := range p.Tables {
		needs := t.Where != ""
		exprs := make([]string, 0, len(t.Columns))
		for _, c := range t.Columns {
			exprs = append(exprs, c.Expr)
			needs = needs || c.Transform != plan.TransformNone
		}
		if !needs {
			continue
		}
		if len(exprs) == 0 {
			exprs = []string{"1"}
		}
		where := t.Where
		if where == "" {
			where = "true"
		}
		if err := postgres.ValidateSelect(ctx, src, t.Source.QualifiedName(), exprs, where); err != nil {
			field, what := "columns.transform", "a transform of"
			var se *postgres.SelectError
			if errors.As(err, &se) && se.Where {
				field, what = "where", "the where clause of"
			}
			problems = append(problems, plan.Problem{
				Rule: ruleOf(rules, t.Source), Field: field, Summary: "Invalid Row Selection",
				Detail: fmt.Sprintf("PostgreSQL rejects %s %s: %v", what, t.Source.QualifiedName(), err),
			})
		}
	}
	return problems
}

// foreignRows refuses to load into an existing table that already holds rows
// this task did not copy: appending to them would duplicate data.
func foreignRows(ctx context.Context, tgt *pgxpool.Pool, p *plan.Plan) []plan.Problem {
	var problems []plan.Problem
	for _, t := range p.Tables {
		if !t.Exists {
			continue
		}
		var has bool
		q := "SELECT EXISTS (SELECT 1 FROM " + pgx.Identifier{t.Target.Schema, t.Target.Name}.Sanitize() + ")"
		if err := tgt.QueryRow(ctx, q).Scan(&has); err != nil {
			problems = append(problems, plan.Problem{Rule: -1, Field: "tables", Summary: "Unable to Inspect Target Table",
				Detail: fmt.Sprintf("Checking whether %s is empty failed: %v", t.Target, err)})
			continue
		}
		if has {
			problems = append(problems, plan.Problem{Rule: -1, Field: "tables", Summary: "Target Table Not Empty",
				Detail: fmt.Sprintf("Target table %s already holds rows that this task did not copy; loading into it "+
					"would mix them with the source's. Empty it (TRUNCATE %s), or map %s to another target.",
					t.Target, t.Target, t.Source.QualifiedName())})
		}
	}
	return problems
}

// ruleOf finds the rule that selected table t: an exact rule, else its schema's wildcard.
func ruleOf(rules []plan.Rule, t catalog.Table) int {
	for i, r := range rules {
		if r.Source == t.QualifiedName() {
			return i
		}
	}
	for i, r := range rules {
		if r.Source == t.Schema+".*" {
			return i
		}
	}
	return -1
}

func sourceSchemas(rules []plan.Rule) []string {
	var out []string
	for _, r := range rules {
		if i := strings.IndexByte(r.Source, '.'); i > 0 && !slices.Contains(out, r.Source[:i]) {
			out = append(out, r.Source[:i])
		}
	}
	return out
}

func targetSchemas(rules []plan.Rule) []string {
	out := sourceSchemas(rules)
	for _, r := range rules {
		if i := strings.IndexByte(r.Target, '.'); i > 0 && !slices.Contains(out, r.Target[:i]) {
			out = append(out, r.Target[:i])
		}
	}
	return out
}

// RunOptions steer one apply.
type RunOptions struct {
	// PrepareOnly creates the target tables and records the task without copying rows.
	PrepareOnly bool
	Progress    func(enginecopy.Event)
	// CDC steers the change data capture of a CDC mode.
	CDC CDCOptions
}

// Run moves the task forward: it re-reads both sides (the plan-time view may
// be stale), reloads when the mapping changed, and copies what is left.
// When ctx ends first, progress is saved and the error wraps ctx.Err().
func (s Spec) Run(ctx context.Context, o RunOptions) (enginecopy.Status, *Preview, error) {
	workers := max(s.Parallelism, 1)
	src, tgt, err := pools(ctx, s, workers)
	if err != nil {
		return enginecopy.Status{}, nil, err
	}
	defer src.Close()
	defer tgt.Close()
	pv, err := s.preview(ctx, src, tgt)
	if err == nil && len(pv.Problems) == 0 {
		err = s.inspectCDC(ctx, src, tgt, pv, false)
	}
	if err != nil {
		return enginecopy.Status{}, pv, err
	}
	if len(pv.Problems) > 0 {
		return pv.Status, pv, ProblemsError(pv.Problems)
	}
	if pv.CDC.Started || pv.CDC.Slot.Exists {
		// The task left a CDC mode: the target stops following the source.
		if err := s.stopCapture(ctx, tgt); err != nil {
			return pv.Status, pv, err
		}
	}
	if pv.Reload {
		if err := s.dropLoaded(ctx, tgt, pv.Status); err != nil {
			return pv.Status, pv, err
		}
		if pv, err = s.preview(ctx, src, tgt); err != nil {
			return enginecopy.Status{}, nil, err
		}
	}
	status, err := enginecopy.Run(ctx, src, tgt, pv.Plan, pv.Fingerprint, enginecopy.Options{
		Task: s.Name, Parallelism: workers, Progress: o.Progress, PrepareOnly: o.PrepareOnly,
	})
	return status, pv, err
}

// dropLoaded drops the tables the task loaded (as status records them) and
// forgets the task: a reload, or a destroy with drop_target.
func (s Spec) dropLoaded(ctx context.Context, tgt *pgxpool.Pool, status enginecopy.Status) error {
	loaded := &plan.Plan{}
	for _, t := range status.Tables {
		loaded.Tables = append(loaded.Tables, plan.Table{Target: t.TargetName})
	}
	if err := enginecopy.DropTargets(ctx, tgt, loaded); err != nil {
		return fmt.Errorf("task %s: dropping the tables it loaded: %w", s.Name, err)
	}
	if err := enginecopy.Forget(ctx, tgt, s.Name); err != nil {
		return fmt.Errorf("task %s: %w", s.Name, err)
	}
	return nil
}

// Status reads the task's records on the target.
func (s Spec) Status(ctx context.Context) (enginecopy.Status, error) {
	if s.Target.Postgres == nil {
		return enginecopy.Status{}, errors.New("the target must be a postgres endpoint")
	}
	tgt, giveBack, err := postgres.Borrow(ctx, *s.Target.Postgres)
	if err != nil {
		return enginecopy.Status{}, err
	}
	defer giveBack()
	return enginecopy.ReadStatus(ctx, tgt, s.Name)
}

// stopCapture drops the task's slot and publication on the source, then its
// checkpoint on the target.
func (s Spec) stopCapture(ctx context.Context, tgt *pgxpool.Pool) error {
	if err := s.Teardown(ctx); err != nil {
		return fmt.Errorf("task %s: %w", s.Name, err)
	}
	return cdc.Forget(ctx, tgt, s.Name)
}

// Delete stops the task's change data capture (its slot and publication on
// the source: only those of this task), then forgets the task on the
// target; with dropTarget it also drops the tables the task loaded. Source
// data is never touched. A full_load task that never captured changes does
// not need its source.
func (s Spec) Delete(ctx context.Context, dropTarget bool) error {
	if s.Target.Postgres == nil {
		return errors.New("the target must be a postgres endpoint")
	}
	tgt, err := postgres.Connect(ctx, *s.Target.Postgres)
	if err != nil {
		return err
	}
	defer tgt.Close()
	_, _, started, err := cdc.ReadCheckpoint(ctx, tgt, s.Name)
	if err != nil {
		return err
	}
	if started || s.Mode == ModeFullLoadAndCDC || s.Mode == ModeCDCOnly {
		err := s.stopCapture(ctx, tgt)
		if databaseMissing(err) {
			// PostgreSQL refuses to drop a database that has logical
			// slots: with the source database gone, so are they.
			err = cdc.Forget(ctx, tgt, s.Name)
		}
		if err != nil {
			return err
		}
	}
	if dropTarget {
		status, err := enginecopy.ReadStatus(ctx, tgt, s.Name)
		if err != nil {
			return err
		}
		return s.dropLoaded(ctx, tgt, status)
	}
	return enginecopy.Forget(ctx, tgt, s.Name)
}

// ProblemsError joins problems into one error.
func ProblemsError(ps []plan.Problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// databaseMissing reports an error of connecting to a database that does not exist.
func databaseMissing(err error) bool {
	if ce, ok := engine.AsConnectError(err); ok {
		return ce.Kind == engine.ConnectDatabaseMissing
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000" // invalid_catalog_name
}
