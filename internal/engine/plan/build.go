package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// maxIdentifierBytes is NAMEDATALEN-1: PostgreSQL silently truncates
// longer names, so two long names could become one.
const maxIdentifierBytes = 63

// Build resolves rules against the source catalog src and the target
// catalog tgt (nil when the target is unknown or empty) and returns the
// plan with its tables in load order, and every problem with the rules.
// The plan is only usable when there are no problems. Build does no I/O:
// the same catalogs and rules always give the same plan.
func Build(src, tgt *catalog.Catalog, rules []Rule) (*Plan, []Problem) {
	b := newBuilder(src, tgt, rules)
	if len(rules) == 0 {
		b.problem(-1, "tables", "No Tables Selected",
			"tables is empty: add at least one entry, such as { source = \"public.*\" }.")
		return &Plan{}, b.problems
	}
	b.selectTables()
	b.mapTables()
	b.checkTargets()
	b.order()
	b.buildDDL()
	p := &Plan{Tables: make([]Table, len(b.tables))}
	for i, t := range b.tables {
		p.Tables[i] = t.Table
		if t.rule >= 0 && t.rule < len(rules) {
			p.Tables[i].Mapping = rules[t.rule]
		}
	}
	return p, b.problems
}

type builder struct {
	src, tgt  *catalog.Catalog
	rules     []Rule
	srcTables map[string]*catalog.Table
	tgtTables map[string]*catalog.Table
	srcTypes  map[string]*catalog.Type
	tgtTypes  map[string]*catalog.Type
	parsed    []parsedRule
	selected  []selection
	tables    []*tableBuild
	byTarget  map[string]*tableBuild
	bySource  map[string]*tableBuild
	problems  []Problem
	// relNames holds, per target schema, the relation names taken
	// (tables, partitions, indexes), so index names never collide.
	relNames map[string]map[string]bool
}

type parsedRule struct {
	ok       bool
	wildcard bool
	schema   string // wildcard's schema
	source   string // exact table's qualified name
	target   *Name  // explicit target, if any
	matched  []string
}

type selection struct {
	rule  int
	table *catalog.Table
}

func newBuilder(src, tgt *catalog.Catalog, rules []Rule) *builder {
	if src == nil {
		src = &catalog.Catalog{}
	}
	b := &builder{
		src: src, tgt: tgt, rules: rules,
		srcTables: map[string]*catalog.Table{}, tgtTables: map[string]*catalog.Table{},
		srcTypes: map[string]*catalog.Type{}, tgtTypes: map[string]*catalog.Type{},
		byTarget: map[string]*tableBuild{}, bySource: map[string]*tableBuild{},
		relNames: map[string]map[string]bool{},
	}
	for i := range src.Tables {
		b.srcTables[src.Tables[i].QualifiedName()] = &src.Tables[i]
	}
	for i := range src.Types {
		b.srcTypes[src.Types[i].QualifiedName()] = &src.Types[i]
	}
	if tgt != nil {
		for i := range tgt.Tables {
			t := &tgt.Tables[i]
			b.tgtTables[t.QualifiedName()] = t
			b.takeName(t.Schema, t.Name)
			for _, idx := range t.Indexes {
				b.takeName(t.Schema, idx.Name)
			}
		}
		for i := range tgt.Types {
			b.tgtTypes[tgt.Types[i].QualifiedName()] = &tgt.Types[i]
		}
	}
	return b
}

func (b *builder) problem(rule int, field, summary, detail string) {
	b.problems = append(b.problems, Problem{Rule: rule, Field: field, Summary: summary, Detail: detail})
}

// takeName records a relation name in a target schema; false when taken.
func (b *builder) takeName(schema, name string) bool {
	m := b.relNames[schema]
	if m == nil {
		m = map[string]bool{}
		b.relNames[schema] = m
	}
	if m[name] {
		return false
	}
	m[name] = true
	return true
}

// selectTables resolves each rule to the tables it matches: an exact rule
// wins over a wildcard; a partition whose partitioned ancestor is copied
// is not planned apart.
func (b *builder) selectTables() {
	b.parsed = make([]parsedRule, len(b.rules))
	exact := map[string]int{}
	wild := map[string]int{}
	for i, r := range b.rules {
		pr := b.parseRule(i, r)
		b.parsed[i] = pr
		if !pr.ok {
			continue
		}
		if pr.wildcard {
			if j, dup := wild[pr.schema]; dup {
				b.problem(i, "source", "Duplicate Table Entry",
					fmt.Sprintf("%s is listed twice in tables (entries %d and %d); keep one.", r.Source, j+1, i+1))
				b.parsed[i].ok = false
				continue
			}
			wild[pr.schema] = i
		} else {
			if j, dup := exact[pr.source]; dup {
				b.problem(i, "source", "Duplicate Table Entry",
					fmt.Sprintf("%s is listed twice in tables (entries %d and %d); keep one.", pr.source, j+1, i+1))
				b.parsed[i].ok = false
				continue
			}
			exact[pr.source] = i
		}
	}

	ruleOf := map[string]int{}
	for _, t := range b.src.Tables {
		q := t.QualifiedName()
		if i, ok := exact[q]; ok {
			ruleOf[q] = i
		} else if i, ok := wild[t.Schema]; ok {
			ruleOf[q] = i
		}
	}
	for i := range b.src.Tables {
		t := &b.src.Tables[i]
		q := t.QualifiedName()
		i, ok := ruleOf[q]
		if !ok {
			continue
		}
		if anc := b.selectedAncestor(t, ruleOf); anc != "" {
			if !b.parsed[i].wildcard {
				b.problem(i, "source", "Partition Copied Twice",
					fmt.Sprintf("%s is a partition of %s, which is copied as a whole with its partitions. "+
						"Remove this entry, or stop copying %s.", q, anc, anc))
			}
			continue
		}
		b.parsed[i].matched = append(b.parsed[i].matched, q)
		b.selected = append(b.selected, selection{rule: i, table: t})
	}
	for i, pr := range b.parsed {
		if pr.ok && pr.wildcard && len(pr.matched) == 0 && !b.hasTablesIn(pr.schema) {
			detail := fmt.Sprintf("Schema %s has no tables in the source.", pr.schema)
			if s := b.closestSchema(pr.schema); s != "" {
				detail += fmt.Sprintf(" Did you mean %s.*?", s)
			}
			b.problem(i, "source", "Unknown Source Schema", detail)
		}
	}
}

func (b *builder) hasTablesIn(schema string) bool {
	for _, t := range b.src.Tables {
		if t.Schema == schema {
			return true
		}
	}
	return false
}

// selectedAncestor is the nearest partitioned ancestor of t that is
// copied, or "".
func (b *builder) selectedAncestor(t *catalog.Table, ruleOf map[string]int) string {
	found := ""
	seen := map[string]bool{}
	for p := t.PartitionOf; p != "" && !seen[p]; {
		seen[p] = true
		if _, ok := ruleOf[p]; ok {
			found = p
		}
		parent, ok := b.srcTables[p]
		if !ok {
			break
		}
		p = parent.PartitionOf
	}
	return found
}

func (b *builder) parseRule(i int, r Rule) parsedRule {
	pr := parsedRule{}
	src := strings.TrimSpace(r.Source)
	if _, ok := b.srcTables[src]; ok {
		pr.source, pr.ok = src, true
	} else {
		parts, err := splitName(src)
		switch {
		case err != nil || len(parts) != 2:
			b.problem(i, "source", "Invalid Source Table",
				fmt.Sprintf("source %q must be a table as schema.table, or every table of a schema as schema.*.", r.Source))
			return pr
		case parts[1] == "*":
			pr.wildcard, pr.schema, pr.ok = true, parts[0], true
		case strings.Contains(parts[0], "*") || strings.Contains(parts[1], "*"):
			b.problem(i, "source", "Invalid Source Table",
				fmt.Sprintf("source %q: only a whole schema can be matched, as schema.*.", r.Source))
			return pr
		default:
			q := parts[0] + "." + parts[1]
			if _, ok := b.srcTables[q]; !ok {
				detail := fmt.Sprintf("table %s does not exist in the source.", q)
				if s := b.closestTable(q); s != "" {
					detail = fmt.Sprintf("table %s does not exist; did you mean %s?", q, s)
				}
				b.problem(i, "source", "Unknown Source Table", detail)
				return pr
			}
			pr.source, pr.ok = q, true
		}
	}
	if r.Target != "" {
		if pr.wildcard {
			b.problem(i, "target", "Target Not Allowed With Wildcard",
				fmt.Sprintf("%s selects every table of a schema; each keeps its name, so target cannot be set. "+
					"Add an entry for the one table you want to rename.", r.Source))
			pr.ok = false
			return pr
		}
		parts, err := splitName(strings.TrimSpace(r.Target))
		if err != nil || len(parts) < 1 || len(parts) > 2 || slices.Contains(parts, "*") {
			b.problem(i, "target", "Invalid Target Table",
				fmt.Sprintf("target %q must be a table name (keeping the source's schema) or schema.table.", r.Target))
			pr.ok = false
			return pr
		}
		n := Name{Schema: b.srcTables[pr.source].Schema, Name: parts[len(parts)-1]}
		if len(parts) == 2 {
			n.Schema = parts[0]
		}
		for _, p := range []string{n.Schema, n.Name} {
			if len(p) > maxIdentifierBytes {
				b.problem(i, "target", "Invalid Target Table",
					fmt.Sprintf("%q is longer than PostgreSQL's %d-byte limit for names.", p, maxIdentifierBytes))
				pr.ok = false
				return pr
			}
		}
		pr.target = &n
	}
	if r.Where != "" {
		if err := CheckWhere(r.Where); err != nil {
			b.problem(i, "where", "Invalid Where Clause", fmt.Sprintf("%s: %v.", r.Source, err))
		}
	}
	return pr
}

// splitName splits a possibly quoted "schema.table" into its parts. An
// unquoted part is taken as written (names are case-sensitive here);
// quoted parts may contain dots.
func splitName(s string) ([]string, error) {
	var parts []string
	for {
		if s == "" {
			return nil, fmt.Errorf("empty name")
		}
		var part string
		if s[0] == '"' {
			p, rest, ok := scanIdent(s)
			if !ok || p == "" {
				return nil, fmt.Errorf("bad quoting")
			}
			part, s = p, rest
		} else {
			end := strings.IndexAny(s, `."`)
			if end < 0 {
				end = len(s)
			}
			part, s = s[:end], s[end:]
			if part == "" || strings.TrimSpace(part) != part {
				return nil, fmt.Errorf("empty name")
			}
		}
		parts = append(parts, part)
		if s == "" {
			return parts, nil
		}
		if s[0] != '.' {
			return nil, fmt.Errorf("unexpected %q", s)
		}
		s = s[1:]
	}
}

func (b *builder) closestTable(q string) string {
	names := make([]string, 0, len(b.src.Tables))
	for _, t := range b.src.Tables {
		names = append(names, t.QualifiedName())
	}
	return closest(q, names)
}

func (b *builder) closestSchema(s string) string {
	var names []string
	for _, t := range b.src.Tables {
		if !slices.Contains(names, t.Schema) {
			names = append(names, t.Schema)
		}
	}
	return closest(s, names)
}

// closest is the candidate nearest to s by edit distance (ignoring case),
// if it is near enough to be a typo.
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(s), strings.ToLower(c))
		if bestD < 0 || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len([]rune(s))/3) {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// mapTables maps every selected table's columns and target.
func (b *builder) mapTables() {
	slices.SortFunc(b.selected, func(x, y selection) int {
		return cmp.Compare(x.table.QualifiedName(), y.table.QualifiedName())
	})
	for _, s := range b.selected {
		tb := b.mapTable(s.rule, s.table)
		b.tables = append(b.tables, tb)
		b.bySource[s.table.QualifiedName()] = tb
	}
	b.checkWildcardColumns()
}

// checkWildcardColumns reports column names a wildcard rule gives that no
// table it matched has: such a rule applies its columns to the tables
// that have them.
func (b *builder) checkWildcardColumns() {
	for i, pr := range b.parsed {
		if !pr.ok || !pr.wildcard || len(pr.matched) == 0 {
			continue
		}
		has := func(col string) bool {
			for _, q := range pr.matched {
				for _, c := range b.srcTables[q].Columns {
					if c.Name == col {
						return true
					}
				}
			}
			return false
		}
		r := b.rules[i]
		check := func(field string, names []string) {
			for _, n := range names {
				if !has(n) {
					b.problem(i, field, "Unknown Column",
						fmt.Sprintf("no table matched by %s has a column %s.", r.Source, n))
				}
			}
		}
		check("columns.include", r.Include)
		check("columns.exclude", r.Exclude)
		check("columns.rename", sortedKeys(r.Rename))
		check("columns.transform", sortedKeys(r.Transform))
	}
}

// checkTargets reports two tables (or partitions) planned onto one target name.
func (b *builder) checkTargets() {
	owner := map[string]*tableBuild{}
	for _, tb := range b.tables {
		names := append([]Name{tb.Target}, tb.partitionNames...)
		for _, n := range names {
			key := n.String()
			if o, dup := owner[key]; dup && o != tb {
				// Blame the entry that chose the name, if only one did.
				blame := tb.rule
				if b.rules[tb.rule].Target == "" && b.rules[o.rule].Target != "" {
					blame = o.rule
				}
				b.problem(blame, "target", "Duplicate Target Table",
					fmt.Sprintf("%s and %s would both be copied to %s; give one of them another target.",
						o.Source.QualifiedName(), tb.Source.QualifiedName(), key))
				continue
			}
			owner[key] = tb
		}
	}
	for _, tb := range b.tables {
		b.byTarget[tb.Target.String()] = tb
	}
}

// order puts referenced tables before the tables that reference them
// (a cycle is broken by name order).
func (b *builder) order() {
	deps := map[*tableBuild][]*tableBuild{}
	for _, tb := range b.tables {
		for _, fk := range tb.Source.ForeignKeys {
			if ref, ok := b.bySource[b.rootOf(fk.RefTable)]; ok && ref != tb && !slices.Contains(deps[tb], ref) {
				deps[tb] = append(deps[tb], ref)
			}
		}
	}
	// Each step takes the first table by name whose referenced tables are
	// all loaded, so a table comes right after what it needs.
	var out []*tableBuild
	done := map[*tableBuild]bool{}
	for len(out) < len(b.tables) {
		var next *tableBuild
		for _, tb := range b.tables {
			if done[tb] {
				continue
			}
			if next == nil {
				next = tb // a cycle: the first remaining table by name
			}
			ready := true
			for _, d := range deps[tb] {
				if !done[d] {
					ready = false
					break
				}
			}
			if ready {
				next = tb
				break
			}
		}
		done[next] = true
		out = append(out, next)
	}
	b.tables = out
}

// rootOf is the planned table a source table's rows are copied with: the
// table itself or the partitioned ancestor that is copied.
func (b *builder) rootOf(q string) string {
	if _, ok := b.bySource[q]; ok {
		return q
	}
	seen := map[string]bool{}
	for t, ok := b.srcTables[q]; ok && t.PartitionOf != "" && !seen[t.PartitionOf]; t, ok = b.srcTables[t.PartitionOf] {
		seen[t.PartitionOf] = true
		if _, planned := b.bySource[t.PartitionOf]; planned {
			return t.PartitionOf
		}
	}
	return q
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortStrings(s []string) { slices.Sort(s) }
