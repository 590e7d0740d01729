package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

func quoteName(n Name) string { return pgx.Identifier{n.Schema, n.Name}.Sanitize() }

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// buildDDL fills CreateDDL, IndexDDL and ForeignKeyDDL of every table,
// in load order (index names are taken in that order).
func (b *builder) buildDDL() {
	for _, tb := range b.tables {
		b.takeName(tb.Target.Schema, tb.Target.Name)
		for _, p := range tb.partitionNames {
			b.takeName(p.Schema, p.Name)
		}
	}
	for _, tb := range b.tables {
		if tb.Exists {
			tb.IndexDDL = append(tb.IndexDDL, b.setvalExisting(tb)...)
			continue
		}
		b.createDDL(tb)
		b.indexDDL(tb)
	}
	for _, tb := range b.tables {
		if !tb.Exists {
			b.foreignKeyDDL(tb)
		}
	}
}

// preparePartitions runs before checkTargets: it names the partitions a
// partitioned root creates, so they take part in the duplicate check.
func (b *builder) preparePartitions(tb *tableBuild) {
	if tb.Exists || tb.Source.Kind != "partitioned" {
		return
	}
	var walk func(t *catalog.Table, depth int)
	walk = func(t *catalog.Table, depth int) {
		if depth > 32 {
			return
		}
		for _, p := range t.Partitions {
			pt, ok := b.srcTables[p]
			if !ok {
				continue
			}
			tb.partitionNames = append(tb.partitionNames, Name{Schema: tb.Target.Schema, Name: pt.Name})
			walk(pt, depth+1)
		}
	}
	walk(&tb.Source, 0)
}

func (b *builder) createDDL(tb *tableBuild) {
	src := &tb.Source
	q := src.QualifiedName()
	schemas := map[string]bool{}
	createSchema := func(s string) {
		if schemas[s] || s == "public" || b.targetHasSchema(s) {
			return
		}
		schemas[s] = true
		tb.CreateDDL = append(tb.CreateDDL, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(s))
	}
	createSchema(tb.Target.Schema)
	for _, t := range b.typesNeeded(tb) {
		createSchema(t.Schema)
		tb.CreateDDL = append(tb.CreateDDL, typeDDL(t))
	}

	var defs []string
	for _, c := range tb.cols {
		if !c.selected {
			continue
		}
		defs = append(defs, b.columnDef(tb, c))
	}
	for _, ck := range src.Checks {
		if refs := b.changedRefs(tb, ck.Definition); len(refs) > 0 {
			tb.Risks = append(tb.Risks, Risk{Kind: RiskSkipped, Message: fmt.Sprintf(
				"CHECK constraint %s of %s is not created on the target: it uses %s, which the copy %s.",
				ck.Name, q, describeCols(refs), describeHow(tb, refs))})
			continue
		}
		con := "CONSTRAINT " + quoteIdent(ck.Name) + " " + ck.Definition
		if strings.HasSuffix(ck.Definition, " NOT VALID") {
			// The source holds rows that break it: add it after the load,
			// unvalidated, as on the source.
			tb.IndexDDL = append(tb.IndexDDL, "ALTER TABLE "+quoteName(tb.Target)+" ADD "+con)
			continue
		}
		defs = append(defs, con)
	}
	stmt := "CREATE TABLE " + quoteName(tb.Target) + " (\n    " + strings.Join(defs, ",\n    ") + "\n)"
	stmt += b.partitionBy(tb, src, q)
	tb.CreateDDL = append(tb.CreateDDL, stmt)
	if src.Kind == "partitioned" {
		b.partitionDDL(tb, src, tb.Target, 0)
	}
}

func (b *builder) targetHasSchema(s string) bool {
	if b.tgt == nil {
		return false
	}
	for _, t := range b.tgt.Tables {
		if t.Schema == s {
			return true
		}
	}
	return false
}

// partitionBy renders the PARTITION BY clause of a partitioned table (what
// names it in messages) and reports a key that uses a column the copy changes.
func (b *builder) partitionBy(tb *tableBuild, t *catalog.Table, what string) string {
	if t.Kind != "partitioned" || t.PartitionKey == "" {
		return ""
	}
	if refs := b.changedRefs(tb, t.PartitionKey); len(refs) > 0 {
		b.problem(tb.rule, fieldFor(tb, refs[0]), "Partition Key Depends on a Changed Column", fmt.Sprintf(
			"%s is partitioned by %s, which uses %s that the copy %s; keep the partition key's columns as they are.",
			what, t.PartitionKey, describeCols(refs), describeHow(tb, refs)))
	}
	return " PARTITION BY " + t.PartitionKey
}

func (b *builder) partitionDDL(tb *tableBuild, parent *catalog.Table, parentTarget Name, depth int) {
	if depth > 32 {
		return
	}
	for _, p := range parent.Partitions {
		pt, ok := b.srcTables[p]
		if !ok {
			schema, _, _ := strings.Cut(p, ".")
			b.problem(tb.rule, "source", "Partition Not Read", fmt.Sprintf(
				"%s is a partition of %s, but its schema was not read, so it cannot be created on the target. "+
					"Add an entry for %s.* to tables (its partitions are still copied with %s).",
				p, parent.QualifiedName(), schema, tb.Source.QualifiedName()))
			continue
		}
		name := Name{Schema: tb.Target.Schema, Name: pt.Name}
		if pt.PartitionBound == "" {
			b.problem(tb.rule, "source", "Partition Bound Unknown", fmt.Sprintf(
				"the catalog does not say which rows partition %s of %s holds.", p, parent.QualifiedName()))
			continue
		}
		stmt := "CREATE TABLE " + quoteName(name) + " PARTITION OF " + quoteName(parentTarget) + " " + pt.PartitionBound
		stmt += b.partitionBy(tb, pt, "partition "+p)
		tb.CreateDDL = append(tb.CreateDDL, stmt)
		if pt.Kind == "partitioned" {
			b.partitionDDL(tb, pt, name, depth+1)
		}
	}
}

// columnDef is one column of CREATE TABLE.
func (b *builder) columnDef(tb *tableBuild, c colBuild) string {
	q := tb.Source.QualifiedName()
	col := c.src
	def := quoteIdent(c.target) + " " + c.tgtType
	sameType := c.transform == TransformNone || c.transform == TransformRedact
	if col.Generated != "" {
		def += " GENERATED ALWAYS AS (" + col.Generated + ") STORED"
	}
	switch {
	case col.Identity == "" || !sameType:
		if col.Identity != "" {
			tb.Risks = append(tb.Risks, Risk{Kind: RiskDefault, Column: col.Name, Message: fmt.Sprintf(
				"Column %s of %s is an identity column, but the copy changes its type: the target column is a plain column, so new rows must supply it.",
				col.Name, q)})
		}
	case col.Identity == "always":
		def += " GENERATED ALWAYS AS IDENTITY"
	default:
		def += " GENERATED BY DEFAULT AS IDENTITY"
	}
	if col.NotNull {
		def += " NOT NULL"
	}
	switch {
	case col.Default == "":
	case strings.Contains(col.Default, "nextval("):
		tb.Risks = append(tb.Risks, Risk{Kind: RiskDefault, Column: col.Name, Message: fmt.Sprintf(
			"Column %s of %s takes its default from a sequence (%s); sequences are not copied, so the target column has no default "+
				"and rows inserted after cutover must supply %s (or make it an identity column on the target).",
			col.Name, q, col.Default, c.target)})
	case !sameType:
		tb.Risks = append(tb.Risks, Risk{Kind: RiskDefault, Column: col.Name, Message: fmt.Sprintf(
			"Column %s of %s has the default %s, which is not created on the target because the copy changes the column's type.",
			col.Name, q, col.Default)})
	default:
		def += " DEFAULT " + col.Default
	}
	return def
}

// typesNeeded lists the user types the created table's columns use that
// the target does not have, bases before the domains on them.
func (b *builder) typesNeeded(tb *tableBuild) []*catalog.Type {
	need := map[string]bool{}
	var add func(name string, depth int)
	add = func(name string, depth int) {
		if name == "" || need[name] || depth > 32 {
			return
		}
		need[name] = true
		if t, ok := b.srcTypes[name]; ok {
			add(t.BaseUserType, depth+1)
		}
	}
	for _, c := range tb.cols {
		if c.selected && canonicalType(c.tgtType) == canonicalType(c.src.Type) {
			add(c.src.UserType, 0)
		}
	}
	var out []*catalog.Type
	for i := range b.src.Types {
		t := &b.src.Types[i]
		if !need[t.QualifiedName()] {
			continue
		}
		delete(need, t.QualifiedName())
		if have, ok := b.tgtTypes[t.QualifiedName()]; ok {
			b.checkTargetType(tb, t, have)
			continue
		}
		out = append(out, t)
	}
	for _, missing := range sortedKeys(need) {
		b.problem(tb.rule, "source", "Unknown Column Type", fmt.Sprintf(
			"a column of %s has type %s, which the source catalog does not describe.", tb.Source.QualifiedName(), missing))
	}
	return out
}

// checkTargetType reports a target type of the same name that cannot
// hold the source's values.
func (b *builder) checkTargetType(tb *tableBuild, src, tgt *catalog.Type) {
	var why string
	switch {
	case src.Kind != tgt.Kind:
		why = fmt.Sprintf("it is an %s in the source and a %s in the target", src.Kind, tgt.Kind)
	case src.Kind == "enum":
		var missing []string
		for _, l := range src.Labels {
			if !slices.Contains(tgt.Labels, l) {
				missing = append(missing, quoteLiteral(l))
			}
		}
		if len(missing) > 0 {
			why = "the target's enum lacks the labels " + strings.Join(missing, ", ")
		}
	case canonicalType(src.BaseType) != canonicalType(tgt.BaseType):
		why = fmt.Sprintf("the domain is over %s in the source and over %s in the target", src.BaseType, tgt.BaseType)
	}
	if why != "" {
		b.problem(tb.rule, "target", "Incompatible Target Type", fmt.Sprintf(
			"type %s exists in the target, but %s, so the rows of %s cannot be loaded.", src.QualifiedName(), why, tb.Source.QualifiedName()))
	}
}

// typeDDL creates an enum or a domain unless it exists (another table of
// the plan may have created it first).
func typeDDL(t *catalog.Type) string {
	name := pgx.Identifier{t.Schema, t.Name}.Sanitize()
	var create string
	if t.Kind == "enum" {
		labels := make([]string, len(t.Labels))
		for i, l := range t.Labels {
			labels[i] = quoteLiteral(l)
		}
		create = "CREATE TYPE " + name + " AS ENUM (" + strings.Join(labels, ", ") + ")"
	} else {
		create = "CREATE DOMAIN " + name + " AS " + t.BaseType
		if t.Default != "" {
			create += " DEFAULT " + t.Default
		}
		if t.NotNull {
			create += " NOT NULL"
		}
		for _, c := range t.Checks {
			create += " " + c
		}
	}
	return "DO " + dollarQuote(" BEGIN "+create+"; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END ")
}

// indexDDL builds the primary key, unique constraints and indexes of a
// created table, and moves identity sequences past the copied values.
func (b *builder) indexDDL(tb *tableBuild) {
	src := &tb.Source
	q := src.QualifiedName()
	target := quoteName(tb.Target)
	// cols maps source key columns to target names; ok is false (with a
	// reason) when the copy changes them in a way the key cannot survive.
	cols := func(names []string, unique bool) ([]string, string) {
		out := make([]string, len(names))
		for i, n := range names {
			ci, ok := tb.byName[n]
			if !ok {
				return nil, fmt.Sprintf("column %s is unknown", n)
			}
			c := tb.cols[ci]
			switch {
			case !c.selected:
				return nil, fmt.Sprintf("it uses column %s, which the copy excludes", n)
			case unique && c.transform == TransformRedact:
				return nil, fmt.Sprintf("column %s is redacted, so every row would hold the same value", n)
			}
			out[i] = quoteIdent(c.target)
		}
		return out, ""
	}
	pkName := ""
	var pkInclude []string
	for _, idx := range src.Indexes {
		if idx.Primary {
			pkName, pkInclude = idx.ConstraintName, idx.Include
		}
	}
	if len(src.PrimaryKey) > 0 {
		keyCols, why := cols(src.PrimaryKey, true)
		incCols, whyInc := cols(pkInclude, false)
		if why == "" {
			why = whyInc
		}
		if why != "" {
			tb.Risks = append(tb.Risks, Risk{Kind: RiskSkipped, Message: fmt.Sprintf(
				"The primary key of %s is not created on the target: %s.", q, why)})
		} else {
			tb.IndexDDL = append(tb.IndexDDL, "ALTER TABLE "+target+" ADD "+b.constraintName(tb, pkName)+
				"PRIMARY KEY ("+strings.Join(keyCols, ", ")+")"+includeClause(incCols))
			tb.uniqueKeys = append(tb.uniqueKeys, b.targetNames(tb, src.PrimaryKey))
		}
	}
	for _, idx := range src.Indexes {
		if idx.Primary {
			continue
		}
		skip := func(why string) {
			tb.Risks = append(tb.Risks, Risk{Kind: RiskSkipped, Message: fmt.Sprintf(
				"Index %s of %s is not created on the target: %s. Its definition was: %s.", idx.Name, q, why, idx.Definition)})
		}
		if len(idx.Columns) == 0 {
			skip("it is on an expression, and expressions are not carried over")
			continue
		}
		keyCols, why := cols(idx.Columns, idx.Unique)
		incCols, whyInc := cols(idx.Include, false)
		if why == "" {
			why = whyInc
		}
		if why != "" {
			skip(why)
			continue
		}
		if idx.Predicate != "" {
			if refs := b.changedRefs(tb, idx.Predicate); len(refs) > 0 {
				skip(fmt.Sprintf("its WHERE clause uses %s, which the copy %s", describeCols(refs), describeHow(tb, refs)))
				continue
			}
		}
		switch {
		case idx.ConstraintName != "" && idx.Unique && idx.Predicate == "":
			nulls := ""
			if strings.Contains(idx.Definition, " NULLS NOT DISTINCT") {
				nulls = "NULLS NOT DISTINCT "
			}
			tb.IndexDDL = append(tb.IndexDDL, "ALTER TABLE "+target+" ADD "+b.constraintName(tb, idx.ConstraintName)+
				"UNIQUE "+nulls+"("+strings.Join(keyCols, ", ")+")"+includeClause(incCols))
			tb.uniqueKeys = append(tb.uniqueKeys, b.targetNames(tb, idx.Columns))
			continue
		case idx.ConstraintName != "":
			skip(fmt.Sprintf("it backs the exclusion constraint %s, which is not carried over", idx.ConstraintName))
			continue
		}
		// A plain index: the server's own definition, renamed onto the target.
		for _, n := range append(slices.Clone(idx.Columns), idx.Include...) {
			if c := tb.cols[tb.byName[n]]; c.changed() {
				skip(fmt.Sprintf("it uses column %s, which the copy %s", n, c.how()))
				why = "skipped"
				break
			}
		}
		if why != "" {
			continue
		}
		stmt, ok := b.rewriteIndexDef(tb, idx)
		if !ok {
			skip("its definition could not be read")
			continue
		}
		tb.IndexDDL = append(tb.IndexDDL, stmt)
		if idx.Unique && idx.Predicate == "" {
			tb.uniqueKeys = append(tb.uniqueKeys, b.targetNames(tb, idx.Columns))
		}
	}
	for _, c := range tb.cols {
		if c.copied && c.src.Identity != "" && (c.transform == TransformNone || c.transform == TransformRedact) {
			tb.IndexDDL = append(tb.IndexDDL, setval(tb.Target, c.target))
		}
	}
}

// setvalExisting moves the sequences of an existing target's identity
// and serial columns past the values the copy writes into them.
func (b *builder) setvalExisting(tb *tableBuild) []string {
	var out []string
	for _, tc := range tb.target.Columns {
		if tc.Identity == "" && !strings.Contains(tc.Default, "nextval(") {
			continue
		}
		for _, c := range tb.Columns {
			if c.Target == tc.Name {
				out = append(out, setval(tb.Target, tc.Name))
			}
		}
	}
	return out
}

// setval makes a column's sequence hand out values above the copied ones.
func setval(table Name, col string) string {
	return "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(" + quoteLiteral(quoteName(table)) + ", " +
		quoteLiteral(col) + "), coalesce(max(" + quoteIdent(col) + ")::bigint + 1, 1), false) FROM " + quoteName(table)
}

func includeClause(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	return " INCLUDE (" + strings.Join(cols, ", ") + ")"
}

// constraintName is "CONSTRAINT name " when the name is free in the
// target schema, else "" (the server then picks a free one).
func (b *builder) constraintName(tb *tableBuild, name string) string {
	if name == "" || !b.takeName(tb.Target.Schema, name) {
		return ""
	}
	return "CONSTRAINT " + quoteIdent(name) + " "
}

func (b *builder) targetNames(tb *tableBuild, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = tb.cols[tb.byName[n]].target
	}
	return out
}

// rewriteIndexDef turns pg_get_indexdef's "CREATE [UNIQUE] INDEX name ON
// [ONLY] schema.table USING ..." into the same index on the target. ONLY
// is dropped: on a partitioned target the index must cascade to the
// partitions the plan creates.
func (b *builder) rewriteIndexDef(tb *tableBuild, idx catalog.Index) (string, bool) {
	def := idx.Definition
	head := "CREATE INDEX "
	if idx.Unique {
		head = "CREATE UNIQUE INDEX "
	}
	rest, ok := strings.CutPrefix(def, head)
	if !ok {
		return "", false
	}
	name, rest, ok := scanIdent(rest)
	if !ok || name != idx.Name {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, " ON ")
	if !ok {
		return "", false
	}
	rest = strings.TrimPrefix(rest, "ONLY ")
	schema, table, rest, ok := scanQualified(rest)
	if !ok || schema != tb.Source.Schema || table != tb.Source.Name || !strings.HasPrefix(rest, " USING ") {
		return "", false
	}
	stmt := head
	if b.takeName(tb.Target.Schema, idx.Name) {
		stmt += quoteIdent(idx.Name) + " "
	}
	return stmt + "ON " + quoteName(tb.Target) + rest, true
}

// foreignKeyDDL adds the foreign keys whose referenced table is copied too.
func (b *builder) foreignKeyDDL(tb *tableBuild) {
	q := tb.Source.QualifiedName()
	for _, fk := range tb.Source.ForeignKeys {
		skip := func(why string) {
			tb.Risks = append(tb.Risks, Risk{Kind: RiskSkipped, Message: fmt.Sprintf(
				"Foreign key %s of %s is not created on the target: %s.", fk.Name, q, why)})
		}
		ref, ok := b.bySource[b.rootOf(fk.RefTable)]
		if !ok {
			skip(fmt.Sprintf("the table it references, %s, is not copied by this task", fk.RefTable))
			continue
		}
		if ref.Source.QualifiedName() != fk.RefTable {
			skip(fmt.Sprintf("it references partition %s, which is copied as part of %s", fk.RefTable, ref.Source.QualifiedName()))
			continue
		}
		if ref.Where != "" {
			skip(fmt.Sprintf("%s is copied with a where clause, so rows it references may be missing on the target", fk.RefTable))
			continue
		}
		local, why := fkCols(tb, fk.Columns)
		if why == "" {
			var refWhy string
			if _, refWhy = fkCols(ref, fk.RefColumns); refWhy != "" {
				why = "in " + fk.RefTable + ", " + refWhy
			}
		}
		if why != "" {
			skip(why)
			continue
		}
		refNames := b.targetNames(ref, fk.RefColumns)
		if !ref.hasUniqueKey(refNames) {
			skip(fmt.Sprintf("%s will have no primary key or unique constraint on (%s) for it to reference",
				ref.Target, strings.Join(refNames, ", ")))
			continue
		}
		quotedRef := make([]string, len(refNames))
		for i, n := range refNames {
			quotedRef[i] = quoteIdent(n)
		}
		tb.ForeignKeyDDL = append(tb.ForeignKeyDDL, "ALTER TABLE "+quoteName(tb.Target)+" ADD CONSTRAINT "+quoteIdent(fk.Name)+
			" FOREIGN KEY ("+strings.Join(local, ", ")+") REFERENCES "+quoteName(ref.Target)+" ("+strings.Join(quotedRef, ", ")+")"+
			fkTail(fk.Definition))
	}
}

func fkCols(tb *tableBuild, names []string) ([]string, string) {
	out := make([]string, len(names))
	for i, n := range names {
		ci, ok := tb.byName[n]
		if !ok {
			return nil, fmt.Sprintf("column %s is unknown", n)
		}
		c := tb.cols[ci]
		if !c.copied {
			return nil, fmt.Sprintf("it uses column %s, which the copy excludes", n)
		}
		if c.transform != TransformNone {
			return nil, fmt.Sprintf("it uses column %s, whose values the copy transforms", n)
		}
		out[i] = quoteIdent(c.target)
	}
	return out, ""
}

func (tb *tableBuild) hasUniqueKey(cols []string) bool {
	if tb.Exists {
		for _, idx := range tb.target.Indexes {
			if idx.Unique && idx.Predicate == "" && len(idx.Columns) > 0 && sameSet(idx.Columns, cols) {
				return true
			}
		}
		return false
	}
	for _, k := range tb.uniqueKeys {
		if sameSet(k, cols) {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// fkTail is what follows the referenced columns in pg_get_constraintdef's
// text of a foreign key: MATCH FULL, ON UPDATE/ON DELETE actions,
// DEFERRABLE, NOT VALID.
func fkTail(def string) string {
	_, after, ok := strings.Cut(def, " REFERENCES ")
	if !ok {
		return ""
	}
	_, _, rest, ok := scanQualified(after)
	if !ok || !strings.HasPrefix(rest, "(") {
		return ""
	}
	depth := 0
	for i, ch := range rest {
		switch ch {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return rest[i+1:]
			}
		}
	}
	return ""
}

func fieldFor(tb *tableBuild, col string) string {
	c := tb.cols[tb.byName[col]]
	switch {
	case !c.selected:
		return "columns.exclude"
	case c.target != c.src.Name:
		return "columns.rename"
	}
	return "columns.transform"
}

func describeCols(refs []string) string {
	if len(refs) == 1 {
		return "column " + refs[0]
	}
	return "columns " + strings.Join(refs, ", ")
}

func describeHow(tb *tableBuild, refs []string) string {
	var hows []string
	for _, r := range refs {
		h := tb.cols[tb.byName[r]].how()
		if !slices.Contains(hows, h) {
			hows = append(hows, h)
		}
	}
	return strings.Join(hows, " or ")
}
