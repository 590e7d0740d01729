package copy //nolint:predeclared // see doc.go

import (
	"strings"
	"testing"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// TestRunBuiltPlan loads what plan.Build makes of real catalogs: a wildcard
// plus an exact rule with a row subset and a masking transform.
func TestRunBuiltPlan(t *testing.T) {
	e := newEnv(t)
	e.execSrc(shopSource(8000))
	srcCat, err := postgres.ReadCatalog(t.Context(), e.src, postgres.Filter{Schemas: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	tgtCat, err := postgres.ReadCatalog(t.Context(), e.tgt, postgres.Filter{Schemas: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	p, problems := plan.Build(srcCat, tgtCat, []plan.Rule{
		{Source: "shop.*"},
		{Source: "shop.customers", Transform: map[string]string{"email": plan.TransformSHA256}},
		{Source: "shop.skus", Target: "catalog.skus", Where: `code LIKE '%A' OR code LIKE '%''B'`},
	})
	if len(problems) > 0 {
		t.Fatalf("plan.Build: %v", problems)
	}
	if len(p.Tables) != len(shopTables) {
		t.Fatalf("plan has %d tables, want %d", len(p.Tables), len(shopTables))
	}
	ev := newEvents()
	st := mustRun(t)(Run(t.Context(), e.src, e.tgt, p, p.Fingerprint(),
		Options{Task: "built", ChunkBytes: 32 << 10, Progress: ev.record}))
	if st.Phase != PhaseDone {
		t.Fatalf("status %+v", st)
	}
	for _, tb := range p.Tables {
		exprs := make([]string, len(tb.Columns))
		for i, c := range tb.Columns {
			exprs[i] = c.Expr
		}
		from := "(SELECT " + strings.Join(exprs, ", ") + " FROM " + ident(plan.Name{Schema: tb.Source.Schema, Name: tb.Source.Name})
		if tb.Where != "" {
			from += " WHERE " + tb.Where
		}
		want := digest(t, e.src, from+")")
		if got := digest(t, e.tgt, ident(tb.Target)); got != want {
			t.Errorf("%s: target %s, source %s", tb.Target, got, want)
		}
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM catalog.skus`); n == 0 || n >= count(t, e.src, `SELECT count(*) FROM shop.skus`) {
		t.Errorf("catalog.skus has %d rows; want a proper subset", n)
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM shop.customers WHERE email LIKE '%@%'`); n != 0 {
		t.Errorf("%d clear e-mail addresses in the target", n)
	}
	if n := count(t, e.tgt, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'shop.orders'::regclass`); n != 1 {
		t.Errorf("shop.orders has %d foreign keys, want 1", n)
	}
	// Run is idempotent once done.
	ev2 := newEvents()
	mustRun(t)(Run(t.Context(), e.src, e.tgt, p, p.Fingerprint(), Options{Task: "built", Progress: ev2.record}))
	if evs := ev2.drain(); len(evs) != 0 {
		t.Errorf("second run sent %d events", len(evs))
	}
}
