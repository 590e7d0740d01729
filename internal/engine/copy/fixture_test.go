package copy //nolint:predeclared // see doc.go

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/catalog"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// shopSource creates the source schema with n orders: an integer key
// (orders), a bigint key (customers, with an enum, an enum array and float
// specials), a text key full of quotes and backslashes (skus), a composite
// key (lines), a keyless table of identical rows (events) and a partitioned
// table with a sub-partitioned partition (measures). Some notes are large
// enough to be TOASTed.
func shopSource(n int) string {
	return fmt.Sprintf(`
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE shop.customers (
  id bigint PRIMARY KEY, email text NOT NULL, name text, mood shop.mood, moods shop.mood[],
  score float8, created_at timestamptz);
INSERT INTO shop.customers
SELECT g, 'user' || g || '@example.com', CASE WHEN g %% 7 <> 0 THEN 'Customer ' || g END,
       (enum_range(NULL::shop.mood))[1 + g %% 3], ARRAY[(enum_range(NULL::shop.mood))[1 + g %% 2], NULL],
       CASE g %% 50 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' ELSE g / 3.0 END,
       CASE WHEN g = 3 THEN 'infinity' ELSE timestamptz '2020-01-01 00:00+00' + g * interval '37 minutes' END
FROM generate_series(1, %[1]d / 4) g;
CREATE TABLE shop.orders (
  id integer PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers, amount numeric(12,2),
  note text, lines jsonb, tags text[], created date);
INSERT INTO shop.orders
SELECT g, 1 + g %% (%[1]d / 4), (g %% 100000) / 100.0,
       CASE WHEN g %% 997 = 0 THEN repeat(md5(g::text), 4000) WHEN g %% 5 = 0 THEN 'note ' || g END,
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g %% 97, 'qty', 1 + g %% 3)),
       ARRAY['t' || g %% 7, NULL, 'x'], date '2021-01-01' + g %% 1000
FROM generate_series(1, %[1]d) g;
CREATE TABLE shop.skus (code text PRIMARY KEY, descr text);
INSERT INTO shop.skus
SELECT 'SKU\' || g || '''' || chr(65 + g %% 26), 'descr ' || g FROM generate_series(1, %[1]d / 8) g;
CREATE TABLE shop.lines (order_id integer, line integer, qty integer, PRIMARY KEY (order_id, line));
INSERT INTO shop.lines SELECT g / 3, g %% 3, g %% 11 FROM generate_series(1, %[1]d) g;
CREATE TABLE shop.events (kind text, payload text);
INSERT INTO shop.events SELECT 'click', 'same' FROM generate_series(1, %[1]d / 2);
INSERT INTO shop.events SELECT 'view', 'p' || g %% 10 FROM generate_series(1, %[1]d / 2) g;
CREATE TABLE shop.measures (id bigint, at date, v float8, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE shop.measures_2023 PARTITION OF shop.measures FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE shop.measures_2024 PARTITION OF shop.measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
  PARTITION BY RANGE (id);
CREATE TABLE shop.measures_2024_lo PARTITION OF shop.measures_2024 FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE shop.measures_2024_hi PARTITION OF shop.measures_2024 FOR VALUES FROM (1000) TO (MAXVALUE);
CREATE TABLE shop.measures_other PARTITION OF shop.measures DEFAULT;
INSERT INTO shop.measures SELECT g, date '2022-12-01' + g %% 800, g * 1.5 FROM generate_series(1, %[1]d / 2) g;
ANALYZE;
`, n)
}

// col is a column copied as itself.
func col(name string) plan.Column {
	return plan.Column{Source: name, Target: name, Expr: pgx.Identifier{name}.Sanitize()}
}

func cols(names ...string) []plan.Column {
	out := make([]plan.Column, len(names))
	for i, n := range names {
		out[i] = col(n)
	}
	return out
}

func srcTable(name, kind string, key ...string) catalog.Table {
	return catalog.Table{Schema: "shop", Name: name, Kind: kind, PrimaryKey: key}
}

// shopPlan is what the planner would make of shopSource: targets of the
// same names, keys after the load, the foreign key last. An extra type is
// created first so the target's enum OIDs differ from the source's.
func shopPlan() *plan.Plan {
	return &plan.Plan{Tables: []plan.Table{
		{
			Source: srcTable("customers", "table", "id"), Target: plan.Name{Schema: "shop", Name: "customers"},
			Columns: cols("id", "email", "name", "mood", "moods", "score", "created_at"), Key: []string{"id"},
			CreateDDL: []string{
				`CREATE SCHEMA IF NOT EXISTS shop`,
				`CREATE TYPE shop.padding AS (a int, b int, c int)`,
				`CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy')`,
				`CREATE TABLE shop.customers (id bigint NOT NULL, email text NOT NULL, name text, mood shop.mood,
					moods shop.mood[], score float8, created_at timestamptz)`,
			},
			IndexDDL: []string{`ALTER TABLE shop.customers ADD PRIMARY KEY (id)`},
		},
		{
			Source: srcTable("orders", "table", "id"), Target: plan.Name{Schema: "shop", Name: "orders"},
			Columns: cols("id", "customer_id", "amount", "note", "lines", "tags", "created"), Key: []string{"id"},
			CreateDDL: []string{
				`CREATE SCHEMA IF NOT EXISTS shop`,
				`CREATE TABLE shop.orders (id integer NOT NULL, customer_id bigint NOT NULL, amount numeric(12,2),
					note text, lines jsonb, tags text[], created date)`,
			},
			IndexDDL: []string{
				`ALTER TABLE shop.orders ADD PRIMARY KEY (id)`,
				`CREATE INDEX ON shop.orders (customer_id)`,
			},
			ForeignKeyDDL: []string{`ALTER TABLE shop.orders ADD FOREIGN KEY (customer_id) REFERENCES shop.customers`},
		},
		{
			Source: srcTable("skus", "table", "code"), Target: plan.Name{Schema: "shop", Name: "skus"},
			Columns: cols("code", "descr"), Key: []string{"code"},
			CreateDDL: []string{`CREATE SCHEMA IF NOT EXISTS shop`, `CREATE TABLE shop.skus (code text NOT NULL, descr text)`},
			IndexDDL:  []string{`ALTER TABLE shop.skus ADD PRIMARY KEY (code)`},
		},
		{
			Source: srcTable("lines", "table", "order_id", "line"), Target: plan.Name{Schema: "shop", Name: "lines"},
			Columns: cols("order_id", "line", "qty"), Key: []string{"order_id", "line"},
			CreateDDL: []string{`CREATE SCHEMA IF NOT EXISTS shop`,
				`CREATE TABLE shop.lines (order_id integer NOT NULL, line integer NOT NULL, qty integer)`},
			IndexDDL: []string{`ALTER TABLE shop.lines ADD PRIMARY KEY (order_id, line)`},
		},
		{
			Source: srcTable("events", "table"), Target: plan.Name{Schema: "shop", Name: "events"},
			Columns:   cols("kind", "payload"),
			CreateDDL: []string{`CREATE SCHEMA IF NOT EXISTS shop`, `CREATE TABLE shop.events (kind text, payload text)`},
		},
		{
			Source: srcTable("measures", "partitioned", "id", "at"), Target: plan.Name{Schema: "shop", Name: "measures"},
			Columns: cols("id", "at", "v"), Key: []string{"id", "at"},
			CreateDDL: []string{
				`CREATE SCHEMA IF NOT EXISTS shop`,
				`CREATE TABLE shop.measures (id bigint NOT NULL, at date NOT NULL, v float8) PARTITION BY RANGE (at)`,
				`CREATE TABLE shop.measures_2023 PARTITION OF shop.measures FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')`,
				`CREATE TABLE shop.measures_other PARTITION OF shop.measures DEFAULT`,
			},
			IndexDDL: []string{`ALTER TABLE shop.measures ADD PRIMARY KEY (id, at)`},
		},
	}}
}

var shopTables = []string{"shop.customers", "shop.orders", "shop.skus", "shop.lines", "shop.events", "shop.measures"}

// sameData fails t unless every shop table has the same rows on both sides.
func (e *env) sameData(tables ...string) {
	e.t.Helper()
	for _, tbl := range tables {
		s, d := digest(e.t, e.src, tbl), digest(e.t, e.tgt, tbl)
		if s != d {
			e.t.Errorf("%s: target digest %s, source %s", tbl, d, s)
		}
	}
}
