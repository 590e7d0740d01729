package plan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
)

// shopCatalog is a hand-built source catalog with the shapes the planner
// must handle: identity, generated and serial columns, an enum, checks,
// unique and expression indexes, foreign keys, a partitioned table, a
// table keyed only by its replica-identity index and one with no key.
func shopCatalog() *catalog.Catalog {
	pk := func(table string, cols ...string) catalog.Index {
		return catalog.Index{Name: table + "_pkey", Primary: true, Unique: true, Columns: cols, ConstraintName: table + "_pkey",
			Definition: "CREATE UNIQUE INDEX " + table + "_pkey ON shop." + table + " USING btree (" + strings.Join(cols, ", ") + ")"}
	}
	return &catalog.Catalog{
		Engine: "postgres",
		Types: []catalog.Type{
			{Schema: "shop", Name: "status", Kind: "enum", Labels: []string{"new", "paid", "it's done"}},
			{Schema: "shop", Name: "posint", Kind: "domain", BaseType: "integer", NotNull: true, Checks: []string{"CHECK ((VALUE > 0))"}},
		},
		Tables: []catalog.Table{
			{
				Schema: "other", Name: "keyed_by_ri", Kind: "table", ReplicaIdentity: "index", PrimaryKey: []string{},
				Columns: []catalog.Column{{Name: "code", Type: "text", NotNull: true}, {Name: "v", Type: "integer"}},
				Indexes: []catalog.Index{{Name: "keyed_code", Unique: true, ReplicaIdentity: true, Columns: []string{"code"},
					Definition: "CREATE UNIQUE INDEX keyed_code ON other.keyed_by_ri USING btree (code)"}},
			},
			{
				Schema: "shop", Name: "customers", Kind: "table", PrimaryKey: []string{"id"},
				Columns: []catalog.Column{
					{Name: "id", Type: "bigint", NotNull: true, Identity: "always"},
					{Name: "email", Type: "text", NotNull: true},
					{Name: "name", Type: "character varying(100)"},
					{Name: "created_at", Type: "timestamp with time zone", NotNull: true, Default: "now()"},
				},
				Indexes: []catalog.Index{
					{Name: "customers_email_key", Unique: true, Columns: []string{"email"}, ConstraintName: "customers_email_key",
						Definition: "CREATE UNIQUE INDEX customers_email_key ON shop.customers USING btree (email)"},
					{Name: "customers_lower", Columns: []string{},
						Definition: "CREATE INDEX customers_lower ON shop.customers USING btree (lower(email))"},
					pk("customers", "id"),
				},
			},
			{
				Schema: "shop", Name: "events", Kind: "partitioned", PrimaryKey: []string{"id", "at"}, PartitionKey: "RANGE (at)",
				Partitions: []string{"shop.events_2024", "shop.events_2025"},
				Columns:    []catalog.Column{{Name: "id", Type: "bigint", NotNull: true}, {Name: "at", Type: "date", NotNull: true}},
				Indexes: []catalog.Index{{Name: "events_pkey", Primary: true, Unique: true, Columns: []string{"id", "at"}, ConstraintName: "events_pkey",
					Definition: "CREATE UNIQUE INDEX events_pkey ON ONLY shop.events USING btree (id, at)"}},
			},
			{
				Schema: "shop", Name: "events_2024", Kind: "table", PrimaryKey: []string{"id", "at"}, PartitionOf: "shop.events",
				PartitionBound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
				Columns:        []catalog.Column{{Name: "id", Type: "bigint", NotNull: true}, {Name: "at", Type: "date", NotNull: true}},
			},
			{
				Schema: "shop", Name: "events_2025", Kind: "table", PrimaryKey: []string{"id", "at"}, PartitionOf: "shop.events",
				PartitionBound: "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
				Columns:        []catalog.Column{{Name: "id", Type: "bigint", NotNull: true}, {Name: "at", Type: "date", NotNull: true}},
			},
			{
				Schema: "shop", Name: "lines", Kind: "table", PrimaryKey: []string{},
				Columns: []catalog.Column{{Name: "order_id", Type: "bigint", NotNull: true}, {Name: "sku", Type: "text"}},
				ForeignKeys: []catalog.ForeignKey{{Name: "lines_order_fk", Columns: []string{"order_id"}, RefTable: "shop.orders", RefColumns: []string{"id"},
					Definition: "FOREIGN KEY (order_id) REFERENCES shop.orders(id) ON DELETE CASCADE"}},
			},
			{
				Schema: "shop", Name: "orders", Kind: "table", PrimaryKey: []string{"id"},
				Columns: []catalog.Column{
					{Name: "id", Type: "bigint", NotNull: true},
					{Name: "customer_id", Type: "bigint", NotNull: true},
					{Name: "amount", Type: "numeric(12,2)", NotNull: true, Default: "0"},
					{Name: "note", Type: "text"},
					{Name: "ssn", Type: "character varying(11)", NotNull: true},
					{Name: "qty", Type: "bigint", NotNull: true},
					{Name: "tax", Type: "numeric(12,2)", Generated: "(amount * 0.2)"},
					{Name: "legacy", Type: "integer", NotNull: true, Default: "nextval('shop.orders_legacy_seq'::regclass)"},
					{Name: "status", Type: "shop.status", Default: "'new'::shop.status", UserType: "shop.status"},
					{Name: "rank", Type: "shop.posint", NotNull: true, UserType: "shop.posint"},
					{Name: "placed", Type: "timestamp with time zone"},
				},
				Checks: []catalog.Check{{Name: "orders_amount_check", Definition: "CHECK ((amount >= (0)::numeric))"}},
				Indexes: []catalog.Index{
					{Name: "orders_customer_idx", Columns: []string{"customer_id"}, Predicate: "(amount > (0)::numeric)",
						Definition: "CREATE INDEX orders_customer_idx ON shop.orders USING btree (customer_id) WHERE (amount > (0)::numeric)"},
					{Name: "orders_note_idx", Columns: []string{"note"}, Definition: "CREATE INDEX orders_note_idx ON shop.orders USING btree (note)"},
					pk("orders", "id"),
				},
				ForeignKeys: []catalog.ForeignKey{{Name: "orders_customer_fk", Columns: []string{"customer_id"}, RefTable: "shop.customers", RefColumns: []string{"id"},
					Definition: "FOREIGN KEY (customer_id) REFERENCES shop.customers(id)"}},
			},
		},
	}
}

func table(t *testing.T, p *Plan, source string) *Table {
	t.Helper()
	for i := range p.Tables {
		if p.Tables[i].Source.QualifiedName() == source {
			return &p.Tables[i]
		}
	}
	t.Fatalf("%s is not in the plan (tables: %v)", source, planSources(p))
	return nil
}

func planSources(p *Plan) []string {
	var out []string
	for _, t := range p.Tables {
		out = append(out, t.Source.QualifiedName())
	}
	return out
}

func column(t *testing.T, tb *Table, source string) Column {
	t.Helper()
	for _, c := range tb.Columns {
		if c.Source == source {
			return c
		}
	}
	t.Fatalf("column %s is not copied from %s", source, tb.Source.QualifiedName())
	return Column{}
}

func hasRisk(tb *Table, kind, column, text string) bool {
	for _, r := range tb.Risks {
		if r.Kind == kind && (column == "" || r.Column == column) && strings.Contains(r.Message, text) {
			return true
		}
	}
	return false
}

func ddlContains(stmts []string, text string) bool {
	for _, s := range stmts {
		if strings.Contains(s, text) {
			return true
		}
	}
	return false
}

func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ") //nolint:errchkjson // test output only
	return string(b)
}

// wantProblem is one expected problem: rule, field and a part of its detail.
type wantProblem struct {
	rule   int
	field  string
	detail string
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name     string
		rules    []Rule
		tgt      *catalog.Catalog
		problems []wantProblem
		check    func(t *testing.T, p *Plan)
	}{
		// Selection.
		{
			name:     "no rules",
			problems: []wantProblem{{-1, "tables", "tables is empty"}},
		},
		{
			name:  "wildcard selects a schema, a partitioned table once",
			rules: []Rule{{Source: "shop.*"}},
			check: func(t *testing.T, p *Plan) {
				got := planSources(p)
				if want := []string{"shop.customers", "shop.events", "shop.orders", "shop.lines"}; !slices.Equal(got, want) {
					t.Errorf("tables in load order = %v, want %v", got, want)
				}
			},
		},
		{
			name:  "exact rule overrides the wildcard",
			rules: []Rule{{Source: "shop.*"}, {Source: "shop.orders", Target: "orders2", Exclude: []string{"note"}}},
			check: func(t *testing.T, p *Plan) {
				if o := table(t, p, "shop.orders"); o.Target != (Name{"shop", "orders2"}) || len(o.Columns) != 9 {
					t.Errorf("orders: target %s, %d columns", o.Target, len(o.Columns))
				}
				if c := table(t, p, "shop.customers"); c.Target != (Name{"shop", "customers"}) {
					t.Errorf("customers target %s", c.Target)
				}
			},
		},
		{
			name:  "tables matched by no rule are not copied",
			rules: []Rule{{Source: "shop.customers"}},
			check: func(t *testing.T, p *Plan) {
				if got := planSources(p); !slices.Equal(got, []string{"shop.customers"}) {
					t.Errorf("tables = %v", got)
				}
			},
		},
		{
			name:     "unknown table suggests the closest",
			rules:    []Rule{{Source: "shop.ordrs"}},
			problems: []wantProblem{{0, "source", "table shop.ordrs does not exist; did you mean shop.orders?"}},
		},
		{
			name:     "unknown schema suggests the closest",
			rules:    []Rule{{Source: "shpo.*"}},
			problems: []wantProblem{{0, "source", "Did you mean shop.*?"}},
		},
		{
			name:     "wildcard with a target",
			rules:    []Rule{{Source: "shop.*", Target: "x"}},
			problems: []wantProblem{{0, "target", "target cannot be set"}},
		},
		{
			name:     "two rules onto one target",
			rules:    []Rule{{Source: "shop.orders"}, {Source: "shop.customers", Target: "orders"}},
			problems: []wantProblem{{1, "target", "shop.customers and shop.orders would both be copied to shop.orders"}},
		},
		{
			name:     "a renamed table onto a wildcard's table",
			rules:    []Rule{{Source: "shop.*"}, {Source: "other.keyed_by_ri", Target: "shop.lines"}},
			problems: []wantProblem{{1, "target", "would both be copied to shop.lines"}},
		},
		{
			name: "malformed names",
			rules: []Rule{
				{Source: "orders"}, {Source: "shop."}, {Source: ".orders"}, {Source: "shop.ord*"},
				{Source: "shop.orders", Target: "a.b.c"}, {Source: "shop.lines", Target: strings.Repeat("x", 64)},
			},
			problems: []wantProblem{
				{0, "source", "must be a table as schema.table"}, {1, "source", "must be a table"}, {2, "source", "must be a table"},
				{3, "source", "only a whole schema"}, {4, "target", "schema.table"}, {5, "target", "63-byte limit"},
			},
		},
		{
			name:     "duplicate entries",
			rules:    []Rule{{Source: "shop.orders"}, {Source: "shop.orders"}, {Source: "shop.*"}, {Source: "shop.*"}},
			problems: []wantProblem{{1, "source", "listed twice"}, {3, "source", "listed twice"}},
		},
		{
			name:     "a partition named while its root is copied",
			rules:    []Rule{{Source: "shop.*"}, {Source: "shop.events_2024"}},
			problems: []wantProblem{{1, "source", "shop.events_2024 is a partition of shop.events"}},
		},
		{
			name:  "a partition alone is a table",
			rules: []Rule{{Source: "shop.events_2024", Target: "ev"}},
			check: func(t *testing.T, p *Plan) {
				ev := table(t, p, "shop.events_2024")
				if !ddlContains(ev.CreateDDL, `CREATE TABLE "shop"."ev" (`) || ddlContains(ev.CreateDDL, "PARTITION") {
					t.Errorf("CreateDDL: %s", jsonOf(ev.CreateDDL))
				}
			},
		},
		{
			name:  "quoted names",
			rules: []Rule{{Source: `"shop"."orders"`, Target: `"New Schema"."Orders.2"`}},
			check: func(t *testing.T, p *Plan) {
				if o := table(t, p, "shop.orders"); o.Target != (Name{"New Schema", "Orders.2"}) {
					t.Errorf("target %#v", o.Target)
				}
			},
		},
		{
			name:     "where that escapes its parentheses",
			rules:    []Rule{{Source: "shop.orders", Where: "1=1) OR (true"}, {Source: "shop.lines", Where: "true; DROP TABLE x"}},
			problems: []wantProblem{{0, "where", "parenthesis"}, {1, "where", "';'"}},
		},

		// Columns.
		{
			name: "unknown columns",
			rules: []Rule{{Source: "shop.orders", Include: []string{"id", "amout"}, Exclude: []string{"nope"},
				Rename: map[string]string{"nada": "x"}, Transform: map[string]string{"zip": "sha256"}}},
			problems: []wantProblem{
				{0, "columns.include", "has no column amout; did you mean amount?"},
				{0, "columns.exclude", "has no column nope"},
				{0, "columns.rename", "has no column nada"},
				{0, "columns.transform", "has no column zip"},
			},
		},
		{
			name:     "included and excluded",
			rules:    []Rule{{Source: "shop.orders", Include: []string{"id", "note"}, Exclude: []string{"note"}}},
			problems: []wantProblem{{0, "columns.exclude", "both include and exclude"}},
		},
		{
			name:     "rename onto a copied column",
			rules:    []Rule{{Source: "shop.orders", Rename: map[string]string{"note": "ssn"}}},
			problems: []wantProblem{{0, "columns.rename", "column note of shop.orders is renamed to ssn, which column ssn of the copy is already called"}},
		},
		{
			name:     "two renames onto one name",
			rules:    []Rule{{Source: "shop.orders", Rename: map[string]string{"ssn": "x", "note": "x"}}},
			problems: []wantProblem{{0, "columns.rename", "is renamed to x"}},
		},
		{
			name:  "rename onto an excluded column's name, and a swap",
			rules: []Rule{{Source: "shop.customers", Exclude: []string{"name"}, Rename: map[string]string{"email": "name"}}, {Source: "shop.lines", Rename: map[string]string{"order_id": "sku", "sku": "order_id"}}},
			check: func(t *testing.T, p *Plan) {
				if c := column(t, table(t, p, "shop.customers"), "email"); c.Target != "name" || c.Expr != `"email"` {
					t.Errorf("email: %+v", c)
				}
			},
		},
		{
			name:     "transform or rename of an excluded column",
			rules:    []Rule{{Source: "shop.orders", Exclude: []string{"note", "ssn"}, Transform: map[string]string{"note": "sha256"}, Rename: map[string]string{"ssn": "x"}}},
			problems: []wantProblem{{0, "columns.transform", "note of shop.orders has a transform, but it is not copied"}, {0, "columns.rename", "ssn of shop.orders is renamed, but it is not copied"}},
		},
		{
			name: "bad transforms",
			rules: []Rule{{Source: "shop.orders", Transform: map[string]string{
				"note": "md5", "ssn": "cast:", "qty": "cast:int); DROP TABLE x; --", "amount": "sha256:x", "tax": "sha256"}}},
			problems: []wantProblem{
				{0, "columns.transform", `"sha256:x"; allowed are sha256, redact and cast:TYPE`},
				{0, "columns.transform", `"md5"; allowed are`},
				{0, "columns.transform", `"cast:": write cast:TYPE`},
				{0, "columns.transform", `"cast:int); DROP TABLE x; --": write cast:TYPE`},
				{0, "columns.transform", "tax of shop.orders is generated"},
			},
		},
		{
			name:     "redact of a NOT NULL column that is not text",
			rules:    []Rule{{Source: "shop.orders", Transform: map[string]string{"qty": "redact"}}, {Source: "shop.customers", Transform: map[string]string{"created_at": "redact"}}},
			problems: []wantProblem{{1, "columns.transform", "created_at of shop.customers is NOT NULL"}, {0, "columns.transform", "qty of shop.orders is NOT NULL and of type bigint"}},
		},
		{
			name: "transform expressions",
			rules: []Rule{{Source: "shop.orders", Exclude: []string{"tax"}, Transform: map[string]string{
				"note": "redact", "ssn": "redact", "qty": "cast:INT", "placed": "redact", "status": "sha256", "amount": "cast: decimal(10, 2)"}},
				{Source: "shop.customers", Transform: map[string]string{"email": "sha256", "created_at": "cast:date"}}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				want := map[string][2]string{
					"id":     {`"id"`, "bigint"},
					"note":   {"NULL::text", "text"},
					"ssn":    {"'REDACTED'::character varying(11)", "character varying(11)"},
					"qty":    {`"qty"::integer`, "integer"},
					"placed": {"NULL::timestamp with time zone", "timestamp with time zone"},
					"status": {`encode(sha256(convert_to("status"::text, 'UTF8')), 'hex')`, "text"},
					"amount": {`"amount"::numeric(10,2)`, "numeric(10,2)"},
				}
				for col, w := range want {
					if c := column(t, o, col); c.Expr != w[0] || c.TargetType != w[1] {
						t.Errorf("%s: Expr %q TargetType %q, want %q %q", col, c.Expr, c.TargetType, w[0], w[1])
					}
				}
				if o.Passthrough {
					t.Errorf("Passthrough: orders %v", o.Passthrough)
				}
				if c := column(t, o, "qty"); c.Transform != TransformCast || c.CastType != "integer" {
					t.Errorf("qty: %+v", c)
				}
				for _, r := range []struct{ kind, col, text string }{
					{RiskTransform, "note", "NULL instead of its value"},
					{RiskTransform, "ssn", "'REDACTED'"},
					{RiskTransform, "status", "SHA-256"},
					{RiskNarrowing, "qty", "cast from bigint to integer: integer holds smaller numbers than bigint"},
					{RiskNarrowing, "amount", "numeric(10,2) holds 8 integer digits, numeric(12,2) holds 10"},
				} {
					if !hasRisk(o, r.kind, r.col, r.text) {
						t.Errorf("no %s risk on %s saying %q: %s", r.kind, r.col, r.text, jsonOf(o.Risks))
					}
				}
				c := table(t, p, "shop.customers")
				if !hasRisk(c, RiskNarrowing, "created_at", "date has no time of day") {
					t.Errorf("customers risks: %s", jsonOf(c.Risks))
				}
				// The unique constraint on a hashed column stays; the key of a redacted one would not.
				if !ddlContains(c.IndexDDL, `ADD CONSTRAINT "customers_email_key" UNIQUE ("email")`) {
					t.Errorf("customers IndexDDL: %s", jsonOf(c.IndexDDL))
				}
			},
		},
		{
			name:  "narrowing and truncation",
			rules: []Rule{{Source: "shop.customers", Transform: map[string]string{"name": "cast:varchar(50)", "email": "cast:varchar(20)"}}},
			check: func(t *testing.T, p *Plan) {
				c := table(t, p, "shop.customers")
				if !hasRisk(c, RiskTruncation, "name", "character varying(50) holds at most 50 characters, character varying(100) up to 100") ||
					!hasRisk(c, RiskNarrowing, "email", "character varying(20) holds at most 20 characters and text any number") {
					t.Errorf("risks: %s", jsonOf(c.Risks))
				}
			},
		},
		{
			name:     "generated column on a renamed or excluded column",
			rules:    []Rule{{Source: "shop.orders", Rename: map[string]string{"amount": "total"}}, {Source: "shop.customers"}},
			problems: []wantProblem{{0, "columns.rename", "generated column tax of shop.orders is computed as (amount * 0.2), which uses column amount that the copy renames"}},
		},
		{
			name:     "generated column on an excluded column",
			rules:    []Rule{{Source: "shop.orders", Exclude: []string{"amount"}}},
			problems: []wantProblem{{0, "columns.exclude", "which uses column amount that the copy excludes"}},
		},
		{
			name:  "generated column excluded with its input",
			rules: []Rule{{Source: "shop.orders", Exclude: []string{"amount", "tax"}}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				if ddlContains(o.CreateDDL, `"tax"`) || ddlContains(o.CreateDDL, "orders_amount_check") || !hasRisk(o, RiskSkipped, "", "orders_amount_check") {
					t.Errorf("CreateDDL %s risks %s", jsonOf(o.CreateDDL), jsonOf(o.Risks))
				}
				if !hasRisk(o, RiskSkipped, "", "Index orders_customer_idx of shop.orders is not created on the target: its WHERE clause uses column amount, which the copy excludes") {
					t.Errorf("partial index: %s", jsonOf(o.Risks))
				}
			},
		},
		{
			name:  "wildcard columns apply where they exist",
			rules: []Rule{{Source: "shop.*", Exclude: []string{"sku", "note"}, Transform: map[string]string{"email": "sha256"}}},
			check: func(t *testing.T, p *Plan) {
				if len(table(t, p, "shop.lines").Columns) != 1 || column(t, table(t, p, "shop.customers"), "email").Transform != TransformSHA256 {
					t.Errorf("plan: %s", jsonOf(p.Tables))
				}
			},
		},
		{
			name:     "wildcard column no table has",
			rules:    []Rule{{Source: "shop.*", Exclude: []string{"nope"}}},
			problems: []wantProblem{{0, "columns.exclude", "no table matched by shop.* has a column nope"}},
		},
		{
			name:     "nothing left to copy",
			rules:    []Rule{{Source: "shop.lines", Exclude: []string{"order_id", "sku"}}},
			problems: []wantProblem{{0, "columns.include", "nothing to copy"}},
		},

		// Target naming and keys.
		{
			name:  "target names",
			rules: []Rule{{Source: "shop.orders", Target: "o"}, {Source: "shop.customers", Target: "crm.people"}, {Source: "shop.lines"}},
			check: func(t *testing.T, p *Plan) {
				for src, want := range map[string]Name{"shop.orders": {"shop", "o"}, "shop.customers": {"crm", "people"}, "shop.lines": {"shop", "lines"}} {
					if got := table(t, p, src).Target; got != want {
						t.Errorf("%s → %s, want %s", src, got, want)
					}
				}
				o := table(t, p, "shop.orders")
				if !ddlContains(o.ForeignKeyDDL, `ALTER TABLE "shop"."o" ADD CONSTRAINT "orders_customer_fk" FOREIGN KEY ("customer_id") REFERENCES "crm"."people" ("id")`) {
					t.Errorf("orders FK: %s", jsonOf(o.ForeignKeyDDL))
				}
				if l := table(t, p, "shop.lines"); !ddlContains(l.ForeignKeyDDL, `REFERENCES "shop"."o" ("id") ON DELETE CASCADE`) {
					t.Errorf("lines FK: %s", jsonOf(l.ForeignKeyDDL))
				}
			},
		},
		{
			name:  "no foreign key onto a subset",
			rules: []Rule{{Source: "shop.customers", Where: "id < 100"}, {Source: "shop.orders"}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				if len(o.ForeignKeyDDL) != 0 || !hasRisk(o, RiskSkipped, "", "shop.customers is copied with a where clause, so rows it references may be missing") {
					t.Errorf("orders: %s %s", jsonOf(o.ForeignKeyDDL), jsonOf(o.Risks))
				}
			},
		},
		{
			name:  "keys",
			rules: []Rule{{Source: "shop.*"}, {Source: "other.*"}},
			check: func(t *testing.T, p *Plan) {
				if k := table(t, p, "shop.events").Key; !slices.Equal(k, []string{"id", "at"}) {
					t.Errorf("events key %v", k)
				}
				if k := table(t, p, "other.keyed_by_ri").Key; !slices.Equal(k, []string{"code"}) {
					t.Errorf("keyed_by_ri key %v", k)
				}
				l := table(t, p, "shop.lines")
				if l.Key != nil || !hasRisk(l, RiskNoKey, "", "shop.lines has no primary key") {
					t.Errorf("lines: key %v risks %s", l.Key, jsonOf(l.Risks))
				}
				if !l.Passthrough {
					t.Error("lines is not passthrough")
				}
				if hasRisk(table(t, p, "shop.orders"), RiskNoKey, "", "") {
					t.Error("orders has a key")
				}
			},
		},

		// Existing targets.
		{
			name:  "existing compatible target",
			rules: []Rule{{Source: "shop.lines"}, {Source: "shop.orders", Exclude: []string{"note", "tax", "legacy"}, Rename: map[string]string{"amount": "total"}, Transform: map[string]string{"qty": "cast:integer"}}},
			tgt: &catalog.Catalog{Tables: []catalog.Table{
				{Schema: "shop", Name: "lines", Columns: []catalog.Column{{Name: "order_id", Type: "int8", NotNull: true}, {Name: "sku", Type: "text"}, {Name: "extra", Type: "text"}}},
				{Schema: "shop", Name: "orders", Columns: []catalog.Column{
					{Name: "id", Type: "bigint", NotNull: true, Identity: "by default"}, {Name: "customer_id", Type: "bigint", NotNull: true},
					{Name: "total", Type: "numeric(12,2)", NotNull: true}, {Name: "ssn", Type: "character varying(11)", NotNull: true},
					{Name: "qty", Type: "integer", NotNull: true}, {Name: "status", Type: "shop.status"}, {Name: "rank", Type: "shop.posint", NotNull: true},
					{Name: "placed", Type: "timestamp with time zone", NotNull: true},
					{Name: "legacy", Type: "integer", NotNull: true, Default: "42"},
				}},
			}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				if !o.Exists || len(o.CreateDDL) != 0 || len(o.ForeignKeyDDL) != 0 {
					t.Errorf("orders: exists %v, DDL %s %s", o.Exists, jsonOf(o.CreateDDL), jsonOf(o.ForeignKeyDDL))
				}
				if !slices.Equal(o.IndexDDL, []string{`SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('"shop"."orders"', 'id'), coalesce(max("id")::bigint + 1, 1), false) FROM "shop"."orders"`}) {
					t.Errorf("orders IndexDDL: %s", jsonOf(o.IndexDDL))
				}
				if !hasRisk(o, RiskExcludeNotNull, "legacy", "every copied row gets its default, 42") ||
					!hasRisk(o, RiskNarrowing, "placed", "may be NULL, but shop.orders.placed is NOT NULL in the target") {
					t.Errorf("orders risks: %s", jsonOf(o.Risks))
				}
				if l := table(t, p, "shop.lines"); !l.Exists {
					t.Error("lines exists")
				}
			},
		},
		{
			name:  "existing incompatible target",
			rules: []Rule{{Source: "shop.orders", Exclude: []string{"note"}}},
			tgt: &catalog.Catalog{Tables: []catalog.Table{
				{Schema: "shop", Name: "orders", Columns: []catalog.Column{
					{Name: "id", Type: "integer", NotNull: true}, {Name: "customer_id", Type: "bigint", NotNull: true},
					{Name: "amount", Type: "numeric(12,2)", Generated: "0"}, {Name: "note", Type: "text", NotNull: true},
					{Name: "ssn", Type: "character varying(11)"}, {Name: "qty", Type: "bigint"}, {Name: "legacy", Type: "integer"},
					{Name: "status", Type: "shop.status"}, {Name: "placed", Type: "timestamp with time zone"},
					{Name: "audit", Type: "text", NotNull: true},
				}},
			}},
			problems: []wantProblem{{0, "target", "target table shop.orders exists, but it does not fit the copy of shop.orders: " +
				"column id is integer in the target, but the copy writes bigint; " +
				"column amount is generated in the target, so it cannot be written; " +
				"column rank is missing; " +
				"column note is NOT NULL without a default in the target, and the copy excludes it; " +
				"column audit is NOT NULL without a default in the target, and the copy has no column for it."}},
		},

		// DDL.
		{
			name:  "create DDL",
			rules: []Rule{{Source: "shop.*"}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				want := []string{
					`CREATE SCHEMA IF NOT EXISTS "shop"`,
					`DO $migration$ BEGIN CREATE TYPE "shop"."status" AS ENUM ('new', 'paid', 'it''s done'); EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $migration$`,
					`DO $migration$ BEGIN CREATE DOMAIN "shop"."posint" AS integer NOT NULL CHECK ((VALUE > 0)); EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $migration$`,
					`CREATE TABLE "shop"."orders" (
    "id" bigint NOT NULL,
    "customer_id" bigint NOT NULL,
    "amount" numeric(12,2) NOT NULL DEFAULT 0,
    "note" text,
    "ssn" character varying(11) NOT NULL,
    "qty" bigint NOT NULL,
    "tax" numeric(12,2) GENERATED ALWAYS AS ((amount * 0.2)) STORED,
    "legacy" integer NOT NULL,
    "status" shop.status DEFAULT 'new'::shop.status,
    "rank" shop.posint NOT NULL,
    "placed" timestamp with time zone,
    CONSTRAINT "orders_amount_check" CHECK ((amount >= (0)::numeric))
)`,
				}
				if !slices.Equal(o.CreateDDL, want) {
					t.Errorf("orders CreateDDL:\n%s\nwant\n%s", strings.Join(o.CreateDDL, ";\n"), strings.Join(want, ";\n"))
				}
				if !hasRisk(o, RiskDefault, "legacy", "takes its default from a sequence (nextval('shop.orders_legacy_seq'::regclass))") {
					t.Errorf("orders risks: %s", jsonOf(o.Risks))
				}
				for _, c := range o.Columns {
					if c.Source == "tax" {
						t.Error("generated column tax is copied")
					}
				}
				wantIdx := []string{
					`ALTER TABLE "shop"."orders" ADD CONSTRAINT "orders_pkey" PRIMARY KEY ("id")`,
					`CREATE INDEX "orders_customer_idx" ON "shop"."orders" USING btree (customer_id) WHERE (amount > (0)::numeric)`,
					`CREATE INDEX "orders_note_idx" ON "shop"."orders" USING btree (note)`,
				}
				if !slices.Equal(o.IndexDDL, wantIdx) {
					t.Errorf("orders IndexDDL:\n%s", jsonOf(o.IndexDDL))
				}

				c := table(t, p, "shop.customers")
				if !ddlContains(c.CreateDDL, `"id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,`) ||
					!ddlContains(c.CreateDDL, `"created_at" timestamp with time zone NOT NULL DEFAULT now()`) {
					t.Errorf("customers CreateDDL: %s", strings.Join(c.CreateDDL, "\n"))
				}
				wantIdx = []string{
					`ALTER TABLE "shop"."customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY ("id")`,
					`ALTER TABLE "shop"."customers" ADD CONSTRAINT "customers_email_key" UNIQUE ("email")`,
					`SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('"shop"."customers"', 'id'), coalesce(max("id")::bigint + 1, 1), false) FROM "shop"."customers"`,
				}
				if !slices.Equal(c.IndexDDL, wantIdx) {
					t.Errorf("customers IndexDDL:\n%s", jsonOf(c.IndexDDL))
				}
				if !hasRisk(c, RiskSkipped, "", "Index customers_lower of shop.customers is not created on the target: it is on an expression") {
					t.Errorf("customers risks: %s", jsonOf(c.Risks))
				}

				e := table(t, p, "shop.events")
				wantEv := []string{
					`CREATE SCHEMA IF NOT EXISTS "shop"`,
					"CREATE TABLE \"shop\".\"events\" (\n    \"id\" bigint NOT NULL,\n    \"at\" date NOT NULL\n) PARTITION BY RANGE (at)",
					`CREATE TABLE "shop"."events_2024" PARTITION OF "shop"."events" FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
					`CREATE TABLE "shop"."events_2025" PARTITION OF "shop"."events" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
				}
				if !slices.Equal(e.CreateDDL, wantEv) || !slices.Equal(e.IndexDDL, []string{`ALTER TABLE "shop"."events" ADD CONSTRAINT "events_pkey" PRIMARY KEY ("id", "at")`}) {
					t.Errorf("events DDL: %s %s", jsonOf(e.CreateDDL), jsonOf(e.IndexDDL))
				}
			},
		},
		{
			name:  "types the target has are not created",
			rules: []Rule{{Source: "shop.orders", Target: "public.orders"}},
			tgt: &catalog.Catalog{Types: []catalog.Type{
				{Schema: "shop", Name: "status", Kind: "enum", Labels: []string{"it's done", "new", "paid", "refunded"}},
				{Schema: "shop", Name: "posint", Kind: "domain", BaseType: "int4"},
			}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				if ddlContains(o.CreateDDL, "CREATE TYPE") || ddlContains(o.CreateDDL, "CREATE DOMAIN") || ddlContains(o.CreateDDL, "CREATE SCHEMA") {
					t.Errorf("CreateDDL: %s", jsonOf(o.CreateDDL))
				}
				if !hasRisk(o, RiskSkipped, "", "Foreign key orders_customer_fk of shop.orders is not created on the target: the table it references, shop.customers, is not copied by this task") {
					t.Errorf("risks: %s", jsonOf(o.Risks))
				}
			},
		},
		{
			name:  "a target enum without every label",
			rules: []Rule{{Source: "shop.orders"}},
			tgt: &catalog.Catalog{Types: []catalog.Type{
				{Schema: "shop", Name: "status", Kind: "enum", Labels: []string{"new", "paid"}},
			}},
			problems: []wantProblem{{0, "target", `type shop.status exists in the target, but the target's enum lacks the labels 'it''s done'`}},
		},
		{
			name:  "keys and foreign keys on changed columns",
			rules: []Rule{{Source: "shop.customers", Rename: map[string]string{"id": "customer_no"}, Transform: map[string]string{"email": "redact"}}, {Source: "shop.orders", Rename: map[string]string{"note": "remark"}}, {Source: "shop.lines", Exclude: []string{"order_id"}, Include: nil}},
			check: func(t *testing.T, p *Plan) {
				c := table(t, p, "shop.customers")
				if !slices.Equal(c.IndexDDL[:1], []string{`ALTER TABLE "shop"."customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY ("customer_no")`}) ||
					!hasRisk(c, RiskSkipped, "", "customers_email_key of shop.customers is not created on the target: column email is redacted") ||
					!ddlContains(c.IndexDDL, `pg_get_serial_sequence('"shop"."customers"', 'customer_no'), coalesce(max("customer_no")::bigint + 1, 1), false)`) {
					t.Errorf("customers: %s %s", jsonOf(c.IndexDDL), jsonOf(c.Risks))
				}
				o := table(t, p, "shop.orders")
				if !hasRisk(o, RiskSkipped, "", "orders_note_idx of shop.orders is not created on the target: it uses column note, which the copy renames") ||
					!ddlContains(o.ForeignKeyDDL, `FOREIGN KEY ("customer_id") REFERENCES "shop"."customers" ("customer_no")`) {
					t.Errorf("orders: %s %s", jsonOf(o.ForeignKeyDDL), jsonOf(o.Risks))
				}
				l := table(t, p, "shop.lines")
				if len(l.ForeignKeyDDL) != 0 || !hasRisk(l, RiskSkipped, "", "lines_order_fk of shop.lines is not created on the target: it uses column order_id, which the copy excludes") {
					t.Errorf("lines: %s %s", jsonOf(l.ForeignKeyDDL), jsonOf(l.Risks))
				}
			},
		},
		{
			name:  "index names taken in the target schema",
			rules: []Rule{{Source: "shop.orders", Target: "crm.orders"}},
			tgt:   &catalog.Catalog{Tables: []catalog.Table{{Schema: "crm", Name: "old", Indexes: []catalog.Index{{Name: "orders_pkey"}, {Name: "orders_note_idx"}}}}},
			check: func(t *testing.T, p *Plan) {
				o := table(t, p, "shop.orders")
				if !ddlContains(o.IndexDDL, `ALTER TABLE "crm"."orders" ADD PRIMARY KEY ("id")`) ||
					!ddlContains(o.IndexDDL, `CREATE INDEX ON "crm"."orders" USING btree (note)`) ||
					ddlContains(o.CreateDDL, `CREATE SCHEMA IF NOT EXISTS "crm"`) {
					t.Errorf("DDL: %s %s", jsonOf(o.CreateDDL), jsonOf(o.IndexDDL))
				}
			},
		},
		{
			name:     "partition key on a renamed column",
			rules:    []Rule{{Source: "shop.events", Rename: map[string]string{"at": "day"}}},
			problems: []wantProblem{{0, "columns.rename", "shop.events is partitioned by RANGE (at), which uses column at that the copy renames"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, problems := Build(shopCatalog(), tt.tgt, tt.rules)
			if p == nil {
				t.Fatal("nil plan")
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems:\n%s\nwant %d", jsonOf(problems), len(tt.problems))
			}
			for i, w := range tt.problems {
				got := problems[i]
				if got.Rule != w.rule || got.Field != w.field || !strings.Contains(got.Detail, w.detail) || got.Summary == "" {
					t.Errorf("problem %d: %+v\nwant rule %d field %q detail containing %q", i, got, w.rule, w.field, w.detail)
				}
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestBuildPartitionOutsideCatalog(t *testing.T) {
	src := shopCatalog()
	// As if the catalog were read for schema shop while one partition lives in archive.
	src.Tables[2].Partitions = append(src.Tables[2].Partitions, "archive.events_2023")
	_, problems := Build(src, nil, []Rule{{Source: "shop.events"}})
	if len(problems) != 1 || problems[0].Field != "source" || !strings.Contains(problems[0].Detail, "Add an entry for archive.*") {
		t.Fatalf("problems: %s", jsonOf(problems))
	}
}

func TestBuildNilSource(t *testing.T) {
	_, problems := Build(nil, nil, []Rule{{Source: "shop.orders"}})
	if len(problems) != 1 || problems[0].Field != "source" {
		t.Fatalf("problems: %s", jsonOf(problems))
	}
}

func TestFingerprint(t *testing.T) {
	build := func(rules ...Rule) string {
		t.Helper()
		p, problems := Build(shopCatalog(), nil, rules)
		if len(problems) > 0 {
			t.Fatalf("problems: %s", jsonOf(problems))
		}
		return p.Fingerprint()
	}
	base := build(Rule{Source: "shop.*"}, Rule{Source: "shop.orders", Transform: map[string]string{"ssn": "redact", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}})
	if len(base) != 64 {
		t.Fatalf("fingerprint %q", base)
	}
	for range 20 {
		// Same rules in another order, maps built anew (another iteration order).
		if got := build(Rule{Source: "shop.orders", Exclude: []string{"tax"}, Rename: map[string]string{"amount": "total", "qty": "quantity"}, Transform: map[string]string{"note": "sha256", "ssn": "redact"}}, Rule{Source: "shop.*"}); got != base {
			t.Fatalf("fingerprint changed with rule order: %s vs %s", got, base)
		}
	}
	// What does not change the data keeps it: DDL and risks are not part of it.
	src := shopCatalog()
	src.Tables[6].Indexes = nil
	src.Tables[6].ForeignKeys = nil
	p, _ := Build(src, nil, []Rule{{Source: "shop.*"}, {Source: "shop.orders", Transform: map[string]string{"ssn": "redact", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}}})
	if p.Fingerprint() != base {
		t.Error("dropping an index changed the fingerprint")
	}
	// A column added on the source is its evolution, which CDC carries,
	// not a new mapping.
	src = shopCatalog()
	src.Tables[6].Columns = append(src.Tables[6].Columns, catalog.Column{Name: "added_later", Type: "text"})
	p, _ = Build(src, nil, []Rule{{Source: "shop.*"}, {Source: "shop.orders", Transform: map[string]string{"ssn": "redact", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}}})
	added := false
	for _, tb := range p.Tables {
		for _, c := range tb.Columns {
			added = added || c.Source == "added_later"
		}
	}
	if !added || p.Fingerprint() != base {
		t.Error("a column added on the source changed the fingerprint")
	}
	for name, rules := range map[string][]Rule{
		"where":     {{Source: "shop.*"}, {Source: "shop.orders", Where: "id > 10", Transform: map[string]string{"ssn": "redact", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}}},
		"transform": {{Source: "shop.*"}, {Source: "shop.orders", Transform: map[string]string{"ssn": "sha256", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}}},
		"target":    {{Source: "shop.*"}, {Source: "shop.orders", Target: "o", Transform: map[string]string{"ssn": "redact", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}}},
		"tables":    {{Source: "shop.orders", Transform: map[string]string{"ssn": "redact", "note": "sha256"}, Rename: map[string]string{"qty": "quantity", "amount": "total"}, Exclude: []string{"tax"}}},
	} {
		if build(rules...) == base {
			t.Errorf("changing the %s kept the fingerprint", name)
		}
	}
}
