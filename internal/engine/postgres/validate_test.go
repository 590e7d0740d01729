package postgres

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateSelect(t *testing.T) {
	db := newDatabase(t)
	exec(t, db, `
		CREATE SCHEMA shop;
		CREATE TABLE shop.orders (id bigint PRIMARY KEY, amount numeric(12,2), email text, "Note" text);
		CREATE TABLE shop.x (id int);
	`)
	pool := connect(t, superConfig(db))
	emailHash := `encode(sha256(convert_to("email"::text, 'UTF8')), 'hex')`

	tests := []struct {
		name    string
		exprs   []string
		where   string
		inWhere bool
		expr    int    // expected SelectError.Expr
		code    string // expected SQLSTATE; "" when refused before the server
		message string // part of the message
		pos     int    // expected Position; -1 to not check
	}{
		{name: "valid", exprs: []string{`"id"`, `"amount"::integer`, emailHash, `"Note"`}, where: "amount > 10 AND \"Note\" IS NOT NULL"},
		{name: "no where", exprs: []string{`"id"`}},
		{name: "syntax error", exprs: []string{`"id"`}, where: "amount >", inWhere: true, expr: -1, code: "42601", message: "syntax error", pos: 9},
		{name: "unknown column", exprs: []string{`"id"`}, where: "amonut > 10", inWhere: true, expr: -1, code: "42703", message: "amonut", pos: 1},
		{name: "smuggled statement", exprs: []string{`"id"`}, where: "1=1; DROP TABLE shop.x", inWhere: true, expr: -1, message: "';'", pos: 4},
		{name: "breaks out of parentheses", exprs: []string{`"id"`}, where: "1=1) UNION SELECT 1 FROM pg_authid WHERE (true", inWhere: true, expr: -1, message: "parenthesis", pos: 4},
		{name: "bad cast type", exprs: []string{`"id"`, `"amount"::nosuchtype`}, inWhere: false, expr: 1, code: "42704", message: "nosuchtype", pos: 11},
		{name: "bad cast in where", exprs: []string{`"id"`}, where: "amount::nosuchtype IS NULL", inWhere: true, expr: -1, code: "42704", message: "nosuchtype", pos: -1},
		{name: "unknown column expression", exprs: []string{`"id"`, `"nope"`}, expr: 1, code: "42703", message: "nope", pos: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSelect(t.Context(), pool, "shop.orders", tt.exprs, tt.where)
			if tt.message == "" {
				if err != nil {
					t.Fatalf("ValidateSelect: %v", err)
				}
				return
			}
			var se *SelectError
			if !errors.As(err, &se) {
				t.Fatalf("ValidateSelect = %v (%T), want a *SelectError", err, err)
			}
			if se.Where != tt.inWhere || se.Expr != tt.expr || se.Code != tt.code || !strings.Contains(se.Message, tt.message) ||
				(tt.pos >= 0 && se.Position != tt.pos) {
				t.Errorf("got %+v (%v)\nwant Where=%v Expr=%d Code=%q message containing %q at %d",
					*se, err, tt.inWhere, tt.expr, tt.code, tt.message, tt.pos)
			}
		})
	}

	// The table is still there: nothing ran.
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_class WHERE oid = 'shop.x'::regclass`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("shop.x after the smuggled DROP: %d, %v", n, err)
	}
	if err := ValidateSelect(t.Context(), pool, "shop.nope", []string{"1"}, ""); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown table: %v", err)
	}
	if err := ValidateSelect(t.Context(), pool, "orders", nil, ""); err == nil {
		t.Error("unqualified table accepted")
	}
}

// Even past CheckWhere, the extended protocol runs one statement only.
func TestExplainRefusesSecondStatement(t *testing.T) {
	db := newDatabase(t)
	exec(t, db, `CREATE TABLE x (id int)`)
	pool := connect(t, superConfig(db))
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	err = explain(t.Context(), tx, "SELECT 1 FROM x WHERE (1=1); DROP TABLE x; SELECT (1)")
	if err == nil || !strings.Contains(err.Error(), "multiple commands") {
		t.Fatalf("explain of two statements: %v", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM x`).Scan(&n); err != nil {
		t.Fatalf("x is gone: %v", err)
	}
}
