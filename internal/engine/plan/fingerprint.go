package plan

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// Fingerprint is a hex SHA-256 over what defines the copied data: per
// table its source, target, where clause, and columns with their
// expressions and target types. Two plans with the same fingerprint copy
// the same rows into the same shape, so a change that keeps it (a new
// risk, an index) is made in place, and one that alters it needs a reload.
// Tables are taken in source-name order, so load order does not count.
func (p *Plan) Fingerprint() string {
	type col struct {
		Source, Target, Expr, TargetType string
	}
	type table struct {
		Source, Target, Where string
		Columns               []col
	}
	tables := make([]table, 0, len(p.Tables))
	for _, t := range p.Tables {
		ft := table{Source: t.Source.QualifiedName(), Target: t.Target.String(), Where: t.Where}
		for _, c := range t.Columns {
			ft.Columns = append(ft.Columns, col{Source: c.Source, Target: c.Target, Expr: c.Expr, TargetType: c.TargetType})
		}
		tables = append(tables, ft)
	}
	slices.SortFunc(tables, func(a, b table) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	// Marshalling structs and slices (no maps) is deterministic.
	b, err := json.Marshal(struct {
		Version int
		Tables  []table
	}{1, tables})
	if err != nil {
		// Strings and slices of them always marshal.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
