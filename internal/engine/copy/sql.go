package copy //nolint:predeclared // see doc.go

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

func ident(n plan.Name) string { return pgx.Identifier{n.Schema, n.Name}.Sanitize() }

func identList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// quoteLiteral quotes s as PostgreSQL's quote_literal does: backslashes
// force the E'...' form, which reads the same whatever
// standard_conforming_strings says. COPY takes no bind parameters, so chunk
// bounds travel as literals; they come from the source's own text output.
func quoteLiteral(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("value %q holds a NUL byte", s)
	}
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(q, `\`) {
		return `E'` + strings.ReplaceAll(q, `\`, `\\`) + `'`, nil
	}
	return "'" + q + "'", nil
}

// quoteSnapshot checks that id looks like a snapshot id (e.g.
// 00000003-0000001B-1) and quotes it: SET TRANSACTION SNAPSHOT takes no
// parameters either.
func quoteSnapshot(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("empty snapshot id")
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'A' || r > 'F') && (r < 'a' || r > 'f') && r != '-' {
			return "", fmt.Errorf("invalid snapshot id %q", id)
		}
	}
	return "'" + id + "'", nil
}

// Chunk methods, as stored in _migration.chunks.method.
const (
	methodAll   = "all"   // the whole relation
	methodRange = "range" // key >= lo AND key < hi (row comparison for composite keys)
	methodCtid  = "ctid"  // ctid >= '(lo,0)' AND ctid < '(hi,0)'
)

// predicate renders a chunk's bounds as a WHERE condition. A nil bound is
// open: the first and last chunks reach past the values seen when they were
// planned, so a run resumed on a newer snapshot still reads every row once.
func predicate(method string, key, lo, hi []string) (string, error) {
	switch method {
	case methodAll:
		return "true", nil
	case methodCtid:
		var conds []string
		for _, b := range []struct {
			op    string
			bound []string
		}{{">=", lo}, {"<", hi}} {
			if b.bound == nil {
				continue
			}
			if len(b.bound) != 1 {
				return "", fmt.Errorf("ctid bound %q: want one block number", b.bound)
			}
			block, err := strconv.ParseUint(b.bound[0], 10, 32)
			if err != nil {
				return "", fmt.Errorf("ctid bound %q: %w", b.bound[0], err)
			}
			conds = append(conds, fmt.Sprintf("ctid %s '(%d,0)'::tid", b.op, block))
		}
		if len(conds) == 0 {
			return "true", nil
		}
		return strings.Join(conds, " AND "), nil
	case methodRange:
		if len(key) == 0 {
			return "", fmt.Errorf("range chunk without key columns")
		}
		var conds []string
		for _, b := range []struct {
			op    string
			bound []string
		}{{">=", lo}, {"<", hi}} {
			if b.bound == nil {
				continue
			}
			if len(b.bound) != len(key) {
				return "", fmt.Errorf("bound %q does not match key (%s)", b.bound, strings.Join(key, ", "))
			}
			vals := make([]string, len(b.bound))
			for i, v := range b.bound {
				q, err := quoteLiteral(v)
				if err != nil {
					return "", err
				}
				vals[i] = q
			}
			// Untyped literals take the key columns' types; a row comparison
			// orders composite keys as their btree index does.
			if len(key) == 1 {
				conds = append(conds, identList(key)+" "+b.op+" "+vals[0])
			} else {
				conds = append(conds, "("+identList(key)+") "+b.op+" ("+strings.Join(vals, ", ")+")")
			}
		}
		if len(conds) == 0 {
			return "true", nil
		}
		return strings.Join(conds, " AND "), nil
	default:
		return "", fmt.Errorf("unknown chunk method %q", method)
	}
}
