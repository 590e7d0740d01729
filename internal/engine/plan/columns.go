package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// tableBuild is a Table while it is being built, with what the DDL
// stages need to know about its columns.
type tableBuild struct {
	Table
	rule int
	cols []colBuild // every source column, in source order
	// byName maps a source column name to its index in cols.
	byName map[string]int
	// target is the existing target table, when Exists.
	target *catalog.Table
	// partitionNames are the partitions created with a partitioned root.
	partitionNames []Name
	// uniqueKeys are the target column lists with a primary key or unique
	// constraint once IndexDDL ran (for foreign keys pointing here).
	uniqueKeys [][]string
}

// colBuild is one source column's fate.
type colBuild struct {
	src       catalog.Column
	selected  bool // in the target table (copied, or generated there)
	copied    bool
	target    string
	transform string
	castType  string
	expr      string
	tgtType   string
}

// changed is true when the target column is not the source column as it
// was: renamed, excluded or of other values or type. Expressions that
// refer to it (checks, indexes, generated columns) cannot be carried over.
func (c colBuild) changed() bool {
	return !c.selected || c.target != c.src.Name || c.transform != TransformNone
}

// reshaped is true when the target column is renamed, left out, or of
// another type: an expression naming it would not compile on the target.
func (c colBuild) reshaped() bool {
	return !c.selected || c.target != c.src.Name || canonicalType(c.tgtType) != canonicalType(c.src.Type)
}

func (c colBuild) how() string {
	switch {
	case !c.selected:
		return "excludes"
	case c.target != c.src.Name:
		return "renames"
	default:
		return "transforms"
	}
}

// mapTable resolves one table's target, columns, key and risks.
func (b *builder) mapTable(ri int, src *catalog.Table) *tableBuild {
	r := b.rules[ri]
	pr := b.parsed[ri]
	tb := &tableBuild{rule: ri, byName: map[string]int{}}
	tb.Source = *src
	tb.Target = Name{Schema: src.Schema, Name: src.Name}
	if pr.target != nil {
		tb.Target = *pr.target
	}
	tb.Where = r.Where
	q := src.QualifiedName()
	for i, c := range src.Columns {
		tb.byName[c.Name] = i
	}
	has := func(n string) bool { _, ok := tb.byName[n]; return ok }
	// A wildcard applies its column settings to the tables that have the
	// columns; checkWildcardColumns reports names no table has.
	unknown := func(field, n string) bool {
		if has(n) {
			return false
		}
		if !pr.wildcard {
			detail := fmt.Sprintf("table %s has no column %s.", q, n)
			if s := closest(n, columnNames(src)); s != "" {
				detail = fmt.Sprintf("table %s has no column %s; did you mean %s?", q, n, s)
			}
			b.problem(ri, field, "Unknown Column", detail)
		}
		return true
	}
	include := map[string]bool{}
	for _, n := range r.Include {
		if !unknown("columns.include", n) {
			include[n] = true
		}
	}
	exclude := map[string]bool{}
	for _, n := range r.Exclude {
		if unknown("columns.exclude", n) {
			continue
		}
		exclude[n] = true
		if include[n] {
			b.problem(ri, "columns.exclude", "Column Both Included and Excluded",
				fmt.Sprintf("column %s of %s is listed in both include and exclude; keep it in one.", n, q))
		}
	}
	rename := map[string]string{}
	for _, n := range sortedKeys(r.Rename) {
		if unknown("columns.rename", n) {
			continue
		}
		to := r.Rename[n]
		switch {
		case strings.TrimSpace(to) == "":
			b.problem(ri, "columns.rename", "Invalid Column Name",
				fmt.Sprintf("column %s of %s is renamed to an empty name.", n, q))
		case len(to) > maxIdentifierBytes:
			b.problem(ri, "columns.rename", "Invalid Column Name",
				fmt.Sprintf("%q is longer than PostgreSQL's %d-byte limit for names.", to, maxIdentifierBytes))
		default:
			rename[n] = to
		}
	}
	transform := map[string]string{}
	for _, n := range sortedKeys(r.Transform) {
		if !unknown("columns.transform", n) {
			transform[n] = r.Transform[n]
		}
	}

	tb.cols = make([]colBuild, len(src.Columns))
	for i, c := range src.Columns {
		cb := colBuild{src: c, target: c.Name, expr: pgx.Identifier{c.Name}.Sanitize(), tgtType: c.Type}
		cb.selected = (len(include) == 0 || include[c.Name]) && !exclude[c.Name]
		if len(r.Include) > 0 && len(include) == 0 && pr.wildcard {
			// None of a wildcard's include list is in this table: it
			// copies nothing of it, which is reported below.
			cb.selected = false
		}
		if to, ok := rename[c.Name]; ok {
			if cb.selected {
				cb.target = to
			} else {
				b.problem(ri, "columns.rename", "Renamed Column Not Copied",
					fmt.Sprintf("column %s of %s is renamed, but it is not copied (it is excluded or not included).", c.Name, q))
			}
		}
		if spec, ok := transform[c.Name]; ok {
			switch {
			case !cb.selected:
				b.problem(ri, "columns.transform", "Transformed Column Not Copied",
					fmt.Sprintf("column %s of %s has a transform, but it is not copied (it is excluded or not included).", c.Name, q))
			case c.Generated != "":
				b.problem(ri, "columns.transform", "Transform of a Generated Column",
					fmt.Sprintf("column %s of %s is generated: the target computes it, so it cannot be transformed.", c.Name, q))
			default:
				b.transform(tb, &cb, spec)
			}
		}
		cb.copied = cb.selected && c.Generated == ""
		tb.cols[i] = cb
	}

	// Target names must be unique among the target table's columns.
	taken := map[string]string{}
	for _, c := range tb.cols {
		if !c.selected {
			continue
		}
		if other, dup := taken[c.target]; dup {
			first, second := other, c.src.Name
			if _, renamed := rename[second]; !renamed {
				first, second = second, first
			}
			b.problem(ri, "columns.rename", "Duplicate Column Name",
				fmt.Sprintf("column %s of %s is renamed to %s, which column %s of the copy is already called.",
					second, q, c.target, first))
			continue
		}
		taken[c.target] = c.src.Name
	}

	for _, c := range tb.cols {
		if !c.copied {
			continue
		}
		tb.Columns = append(tb.Columns, Column{
			Source: c.src.Name, Target: c.target, SourceType: c.src.Type, TargetType: c.tgtType,
			Transform: c.transform, CastType: c.castType, NotNull: c.src.NotNull, Expr: c.expr,
		})
	}
	if len(tb.Columns) == 0 {
		b.problem(ri, "columns.include", "No Columns to Copy",
			fmt.Sprintf("every column of %s is excluded (or generated), so there is nothing to copy.", q))
	}
	tb.Passthrough = true
	for _, c := range tb.Columns {
		if c.Transform != TransformNone {
			tb.Passthrough = false
		}
	}

	// Generated columns are computed on the target from the columns as
	// they are there: a reference to a column the copy renames, excludes
	// or gives another type breaks them.
	for _, c := range tb.cols {
		if !c.selected || c.src.Generated == "" {
			continue
		}
		for _, ref := range b.refsWhere(tb, c.src.Generated, colBuild.reshaped) {
			rc := tb.cols[tb.byName[ref]]
			field := "columns.exclude"
			if rc.selected && rc.target != rc.src.Name {
				field = "columns.rename"
			} else if rc.selected {
				field = "columns.transform"
			}
			b.problem(ri, field, "Generated Column Depends on a Changed Column",
				fmt.Sprintf("generated column %s of %s is computed as %s, which uses column %s that the copy %s; "+
					"rewriting the expression is not supported, so keep %s as it is or also exclude %s.",
					c.src.Name, q, c.src.Generated, ref, rc.how(), ref, c.src.Name))
		}
	}

	tb.Key = b.key(tb)
	if t, ok := b.tgtTables[tb.Target.String()]; ok {
		tb.Exists = true
		tb.target = t
		b.checkExisting(tb)
	}
	b.preparePartitions(tb)
	return tb
}

// changedRefs lists the columns an expression refers to that the copy
// changes (renames, excludes or transforms).
func (b *builder) changedRefs(tb *tableBuild, expr string) []string {
	return b.refsWhere(tb, expr, colBuild.changed)
}

// refsWhere lists the columns an expression refers to that match pred.
func (b *builder) refsWhere(tb *tableBuild, expr string, pred func(colBuild) bool) []string {
	changed := map[string]bool{}
	for _, c := range tb.cols {
		if pred(c) {
			changed[c.src.Name] = true
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return referencedColumns(expr, changed)
}

func columnNames(t *catalog.Table) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// transform applies a column's transform spec to cb.
func (b *builder) transform(tb *tableBuild, cb *colBuild, spec string) {
	q := tb.Source.QualifiedName()
	col := cb.src
	quoted := pgx.Identifier{col.Name}.Sanitize()
	kind, arg, hasArg := strings.Cut(strings.TrimSpace(spec), ":")
	switch {
	case kind == TransformSHA256 && !hasArg:
		cb.transform = TransformSHA256
		cb.expr = "encode(sha256(convert_to(" + quoted + "::text, 'UTF8')), 'hex')"
		cb.tgtType = "text"
		tb.Risks = append(tb.Risks, Risk{Kind: RiskTransform, Column: col.Name, Message: fmt.Sprintf(
			"Column %s of %s is copied as the hex SHA-256 of its text: the target holds hashes, not the values.", col.Name, q)})
	case kind == TransformRedact && !hasArg:
		cb.transform = TransformRedact
		typ := parseType(col.Type)
		notNull := col.NotNull || b.domainNotNull(col.UserType)
		switch {
		case isTextLike(typ) && col.UserType == "" && notNull:
			cb.expr = "'REDACTED'::" + col.Type
			tb.Risks = append(tb.Risks, Risk{Kind: RiskTransform, Column: col.Name, Message: fmt.Sprintf(
				"Column %s of %s is redacted: every copied row holds 'REDACTED' instead of its value.", col.Name, q)})
		case !notNull:
			cb.expr = "NULL::" + col.Type
			tb.Risks = append(tb.Risks, Risk{Kind: RiskTransform, Column: col.Name, Message: fmt.Sprintf(
				"Column %s of %s is redacted: every copied row holds NULL instead of its value.", col.Name, q)})
		default:
			b.problem(tb.rule, "columns.transform", "Cannot Redact Column", fmt.Sprintf(
				"column %s of %s is NOT NULL and of type %s: redact writes NULL into columns that are not text, "+
					"which NOT NULL refuses. Exclude the column, or use sha256 or a cast instead.", col.Name, q, col.Type))
			return
		}
	case kind == TransformCast && hasArg && validTypeName(arg):
		ct := canonicalType(arg)
		cb.transform, cb.castType = TransformCast, ct
		cb.expr = quoted + "::" + ct
		cb.tgtType = ct
		if k, why := narrowing(col.Type, ct); k != "" {
			tb.Risks = append(tb.Risks, Risk{Kind: k, Column: col.Name, Message: fmt.Sprintf(
				"Column %s of %s is cast from %s to %s: %s.", col.Name, q, col.Type, ct, why)})
		}
	case kind == TransformCast:
		b.problem(tb.rule, "columns.transform", "Invalid Cast", fmt.Sprintf(
			"the transform of column %s of %s is %q: write cast:TYPE with a type name such as cast:bigint or cast:numeric(12,2).",
			col.Name, q, spec))
		return
	default:
		b.problem(tb.rule, "columns.transform", "Unknown Transform", fmt.Sprintf(
			"the transform of column %s of %s is %q; allowed are sha256, redact and cast:TYPE.", col.Name, q, spec))
		return
	}
}

func (b *builder) domainNotNull(userType string) bool {
	for seen := 0; userType != "" && seen < 32; seen++ {
		t, ok := b.srcTypes[userType]
		if !ok || t.Kind != "domain" {
			return false
		}
		if t.NotNull {
			return true
		}
		userType = t.BaseUserType
	}
	return false
}

// key is the source key chunks are split by: the primary key, else the
// replica-identity index; none (ctid ranges) is a risk.
func (b *builder) key(tb *tableBuild) []string {
	src := &tb.Source
	if len(src.PrimaryKey) > 0 {
		return slices.Clone(src.PrimaryKey)
	}
	for _, idx := range src.Indexes {
		if idx.ReplicaIdentity && len(idx.Columns) > 0 {
			return slices.Clone(idx.Columns)
		}
	}
	cdcNote := "change data capture will need REPLICA IDENTITY FULL on it"
	if src.ReplicaIdentity == "full" {
		cdcNote = "change data capture finds its rows by every column (REPLICA IDENTITY FULL), slower than by a key"
	}
	tb.Risks = append(tb.Risks, Risk{Kind: RiskNoKey, Message: fmt.Sprintf(
		"%s has no primary key: the full load splits it by physical position (ctid block ranges), and %s.",
		src.QualifiedName(), cdcNote)})
	return nil
}

// checkExisting compares the copy with an existing target table: every
// copied column must exist there with the type written, and every column
// the copy leaves out must be fillable by the target.
func (b *builder) checkExisting(tb *tableBuild) {
	t := tb.target
	q := tb.Source.QualifiedName()
	tcols := map[string]catalog.Column{}
	for _, c := range t.Columns {
		tcols[c.Name] = c
	}
	var diffs []string
	written := map[string]bool{}
	for _, c := range tb.Columns {
		written[c.Target] = true
		tc, ok := tcols[c.Target]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("column %s is missing", c.Target))
		case tc.Generated != "":
			diffs = append(diffs, fmt.Sprintf("column %s is generated in the target, so it cannot be written", c.Target))
		case canonicalType(tc.Type) != canonicalType(c.TargetType):
			diffs = append(diffs, fmt.Sprintf("column %s is %s in the target, but the copy writes %s", c.Target, tc.Type, c.TargetType))
		case tc.NotNull && !c.NotNull:
			tb.Risks = append(tb.Risks, Risk{Kind: RiskNarrowing, Column: c.Source, Message: fmt.Sprintf(
				"Column %s of %s may be NULL, but %s.%s is NOT NULL in the target: a NULL makes the load fail.",
				c.Source, q, tb.Target, c.Target)})
		}
	}
	excluded := map[string]bool{}
	for _, c := range tb.cols {
		if !c.copied {
			excluded[c.target] = true
		}
	}
	for _, tc := range t.Columns {
		if written[tc.Name] || !tc.NotNull || tc.Generated != "" || tc.Identity != "" {
			continue
		}
		switch {
		case tc.Default == "" && excluded[tc.Name]:
			diffs = append(diffs, fmt.Sprintf("column %s is NOT NULL without a default in the target, and the copy excludes it", tc.Name))
		case tc.Default == "":
			diffs = append(diffs, fmt.Sprintf("column %s is NOT NULL without a default in the target, and the copy has no column for it", tc.Name))
		case excluded[tc.Name]:
			tb.Risks = append(tb.Risks, Risk{Kind: RiskExcludeNotNull, Column: tc.Name, Message: fmt.Sprintf(
				"Column %s of %s is excluded, and %s.%s is NOT NULL in the target: every copied row gets its default, %s.",
				tc.Name, q, tb.Target, tc.Name, tc.Default)})
		}
	}
	if len(diffs) > 0 {
		b.problem(tb.rule, "target", "Incompatible Target Table", fmt.Sprintf(
			"target table %s exists, but it does not fit the copy of %s: %s. Change the target table to match, "+
				"or map %s to another target.", tb.Target, q, strings.Join(diffs, "; "), q))
	}
}
