package plan

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// Fingerprint is a hex SHA-256 over what the user asked of the data: per
// table its source, target, where clause, and the column settings of the
// rule that selected it (include, exclude, rename, transform). Two plans
// with the same fingerprint copy the same rows into the same shape, so a
// change that keeps it (a new risk, an index) is made in place, and one that
// alters it needs a reload. The source's own evolution does not count: a
// column added on the source is a schema change that change data capture
// carries to the target, not a new mapping. Tables are taken in source-name
// order, so load order does not count.
func (p *Plan) Fingerprint() string {
	type pair struct{ From, To string }
	type table struct {
		Source, Target, Where string
		Include, Exclude      []string
		Rename, Transform     []pair
	}
	sorted := func(m map[string]string) []pair {
		out := make([]pair, 0, len(m))
		for k, v := range m {
			out = append(out, pair{k, v})
		}
		slices.SortFunc(out, func(a, b pair) int { return cmp.Compare(a.From, b.From) })
		return out
	}
	sortedList := func(l []string) []string {
		out := slices.Clone(l)
		slices.Sort(out)
		return out
	}
	tables := make([]table, 0, len(p.Tables))
	for _, t := range p.Tables {
		r := t.Mapping
		tables = append(tables, table{Source: t.Source.QualifiedName(), Target: t.Target.String(), Where: t.Where,
			Include: sortedList(r.Include), Exclude: sortedList(r.Exclude), Rename: sorted(r.Rename), Transform: sorted(r.Transform)})
	}
	slices.SortFunc(tables, func(a, b table) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	// Marshalling structs and slices (no maps) is deterministic.
	b, err := json.Marshal(struct {
		Version int
		Tables  []table
	}{2, tables})
	if err != nil {
		// Strings and slices of them always marshal.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
