package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckWhere(t *testing.T) {
	tests := []struct {
		where string
		pos   int    // 0: valid
		msg   string // part of the message
	}{
		{where: "amount > 10"},
		{where: `"Odd ) Name" = 'it''s ) ; ok' AND (x IN (1, 2))`},
		{where: `note = E'a\'); DROP' OR y = $$;)$$ OR z = $t$ ) $t$`},
		{where: "a /* ) ; /* nested */ */ = 1"},
		{where: "created_at >= '2024-01-01' AND random() < 0.05"},
		{where: "   ", pos: 1, msg: "blank"},
		{where: "1=1; DROP TABLE x", pos: 4, msg: "';'"},
		{where: "1=1) OR (true", pos: 4, msg: "never opened"},
		{where: "(a = 1", pos: 1, msg: "never closes"},
		{where: "a = 'x", pos: 5, msg: "string constant"},
		{where: `"a = 1`, pos: 1, msg: "quoted identifier"},
		{where: "a = 1 -- )", pos: 7, msg: "comments"},
		{where: "a = 1 /* x", pos: 7, msg: "comment is never closed"},
		{where: "a = $x$ y", pos: 5, msg: "dollar-quoted"},
		{where: "é = 1;", pos: 6, msg: "';'"},
	}
	for _, tt := range tests {
		err := CheckWhere(tt.where)
		if tt.pos == 0 {
			if err != nil {
				t.Errorf("CheckWhere(%q) = %v", tt.where, err)
			}
			continue
		}
		var we *WhereError
		if !errors.As(err, &we) || we.Position != tt.pos || !strings.Contains(we.Message, tt.msg) {
			t.Errorf("CheckWhere(%q) = %v, want position %d and %q", tt.where, err, tt.pos, tt.msg)
		}
	}
}

func TestReferencedColumns(t *testing.T) {
	names := map[string]bool{"amount": true, "Status": true, "lower": true, "numeric": true, "note": true}
	tests := []struct {
		expr string
		want []string
	}{
		{"(amount * 0.2)", []string{"amount"}},
		{`("Status" <> 'amount'::text)`, []string{"Status"}},
		{"lower(x) = (0)::numeric", nil},
		{`CHECK ((length(note) < 10))`, []string{"note"}},
		{"status = 1", nil}, // "Status" needs quotes to be the mixed-case column
		{"'unterminated", []string{"Status", "amount", "lower", "note", "numeric"}},
	}
	for _, tt := range tests {
		if got := referencedColumns(tt.expr, names); !slices.Equal(got, tt.want) {
			t.Errorf("referencedColumns(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestSplitName(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"shop.orders", []string{"shop", "orders"}},
		{"shop.*", []string{"shop", "*"}},
		{"Mixed Schema.User Table", []string{"Mixed Schema", "User Table"}},
		{`"a.b"."c""d"`, []string{"a.b", `c"d`}},
		{"orders", []string{"orders"}},
		{"shop.", nil}, {".x", nil}, {`"x`, nil}, {`"x"y`, nil}, {"", nil}, {" shop.x", nil},
	}
	for _, tt := range tests {
		got, err := splitName(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("splitName(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestQuoting(t *testing.T) {
	if got := quoteLiteral(`it's`); got != `'it''s'` {
		t.Errorf("quoteLiteral = %s", got)
	}
	if got := quoteLiteral(`a\'b`); got != `E'a\\''b'` {
		t.Errorf("quoteLiteral with a backslash = %s", got)
	}
	if got := dollarQuote("x $migration$ y"); got != "$migration1$x $migration$ y$migration1$" {
		t.Errorf("dollarQuote = %s", got)
	}
	if got := fkTail(`FOREIGN KEY (a, b) REFERENCES "S x"."T(1)"(c, d) MATCH FULL ON DELETE SET NULL (a) DEFERRABLE`); got != " MATCH FULL ON DELETE SET NULL (a) DEFERRABLE" {
		t.Errorf("fkTail = %q", got)
	}
	if got := fkTail("FOREIGN KEY (a) REFERENCES s.t(c)"); got != "" {
		t.Errorf("fkTail = %q", got)
	}
}

func TestCanonicalType(t *testing.T) {
	for in, want := range map[string]string{
		"int": "integer", "INT4": "integer", "int8": "bigint", "pg_catalog.int2": "smallint",
		"varchar(10)": "character varying(10)", "varchar": "character varying", "character varying(5)": "character varying(5)",
		"char": "character(1)", "char(3)": "character(3)", "bpchar": "bpchar",
		"decimal(10, 2)": "numeric(10,2)", "numeric(5)": "numeric(5,0)", "numeric": "numeric",
		"float": "double precision", "float(10)": "real", "float8": "double precision", "float4": "real",
		"timestamptz": "timestamp with time zone", "timestamp(3) with time zone": "timestamp(3) with time zone",
		"timestamp": "timestamp without time zone", "timestamp(0)": "timestamp(0) without time zone",
		"timetz": "time with time zone", "bool": "boolean",
		"int[]": "integer[]", "integer[][]": "integer[]", "text [ ]": "text[]", "varchar(3)[2]": "character varying(3)[]",
		`"Odd Schema"."Mood"`: `"Odd Schema"."Mood"`, `"Odd Schema"."Mood"[]`: `"Odd Schema"."Mood"[]`,
		"shop.status": "shop.status", "jsonb": "jsonb", "interval": "interval",
	} {
		if got := canonicalType(in); got != want {
			t.Errorf("canonicalType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidTypeName(t *testing.T) {
	for _, ok := range []string{"bigint", "numeric(12,2)", "numeric(5, -2)", "character varying(10)", "timestamp(3) with time zone",
		"double precision", `"Odd Schema"."Mood"`, "shop.status[]", "int[][]", "interval day to second", `"x"" FROM y; --"`} {
		if !validTypeName(ok) {
			t.Errorf("validTypeName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "int); DROP TABLE x; --", "int, (select 1)", "text COLLATE \"C\"", "int -- x", "numeric(1,2,3)",
		"int)", "text || 'x'", "\"unterminated", "a.b.c"} {
		if validTypeName(bad) {
			t.Errorf("validTypeName(%q) = true", bad)
		}
	}
}

func TestNarrowing(t *testing.T) {
	tests := []struct {
		from, to, kind, text string
	}{
		{"bigint", "integer", RiskNarrowing, "smaller numbers"},
		{"integer", "bigint", "", ""},
		{"int", "integer", "", ""},
		{"numeric(12,2)", "numeric(10,2)", RiskNarrowing, "8 integer digits"},
		{"numeric(12,2)", "numeric(12,1)", RiskNarrowing, "decimals are rounded"},
		{"numeric(12,2)", "numeric(14,4)", "", ""},
		{"numeric", "numeric(10,2)", RiskNarrowing, "fixed precision"},
		{"numeric(10,2)", "numeric", "", ""},
		{"numeric(12,2)", "integer", RiskNarrowing, "no fractions"},
		{"bigint", "numeric(10,0)", RiskNarrowing, "at most 10 integer digits"},
		{"integer", "numeric(10,0)", "", ""},
		{"bigint", "double precision", RiskNarrowing, "rounded"},
		{"integer", "double precision", "", ""},
		{"double precision", "real", RiskNarrowing, "about 6"},
		{"timestamp with time zone", "date", RiskNarrowing, "no time of day"},
		{"timestamp without time zone", "date", RiskNarrowing, "no time of day"},
		{"timestamptz", "timestamp", RiskNarrowing, "drops the zone"},
		{"date", "timestamptz", "", ""},
		{"timestamp(6) with time zone", "timestamp(0) with time zone", RiskNarrowing, "0 fractional digits"},
		{"text", "varchar(10)", RiskNarrowing, "at most 10 characters and text any number"},
		{"varchar(100)", "varchar(50)", RiskTruncation, "up to 100"},
		{"varchar(10)", "text", "", ""},
		{"character(5)", "character(2)", RiskTruncation, ""},
		{"integer", "text", "", ""},
		{"integer", "varchar(3)", RiskNarrowing, "cut"},
		{"text", "integer", RiskNarrowing, "not valid integer make the load fail"},
		{"integer[]", "integer", RiskNarrowing, "not both arrays"},
	}
	for _, tt := range tests {
		kind, why := narrowing(tt.from, tt.to)
		if kind != tt.kind || !strings.Contains(why, tt.text) || (kind != "" && why == "") {
			t.Errorf("narrowing(%s, %s) = %q %q, want %q containing %q", tt.from, tt.to, kind, why, tt.kind, tt.text)
		}
	}
}
