package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// validateStatementTimeout bounds one EXPLAIN: planning a simple SELECT
// takes milliseconds, so a slow one is stuck behind something.
const validateStatementTimeout = "15s"

// SelectError is the source server refusing a selection the copier would
// run: a where clause or a column expression it cannot parse, resolve or
// plan (a syntax error, an unknown column, function or type).
type SelectError struct {
	// Where is true when the fault is in the where clause, false when it
	// is in a column expression (or the table itself).
	Where bool
	// Expr is the index of the column expression at fault; -1 when the
	// fault is in the where clause or cannot be placed.
	Expr int
	// Position is the 1-based character position of the fault within the
	// where clause (Where) or within exprs[Expr]; 0 when unknown.
	Position int
	// Message is the server's message; Code its SQLSTATE (empty when the
	// clause was refused before reaching the server).
	Message string
	Code    string
	Err     error
}

func (e *SelectError) Error() string {
	var b strings.Builder
	if e.Where {
		b.WriteString("invalid where clause: ")
	} else if e.Expr >= 0 {
		fmt.Fprintf(&b, "invalid column expression %d: ", e.Expr+1)
	} else {
		b.WriteString("invalid selection: ")
	}
	b.WriteString(e.Message)
	if e.Position > 0 {
		fmt.Fprintf(&b, " (at character %d)", e.Position)
	}
	return b.String()
}

func (e *SelectError) Unwrap() error { return e.Err }

// ValidateSelect asks the source whether `SELECT <exprs> FROM <table>
// WHERE (<where>)` is valid, by EXPLAINing it (so names, types and
// privileges are checked by the server's own parser and planner, and
// nothing runs). table is the unquoted "schema.name" (split at the first
// dot); an empty where is not checked. Statements go through the extended
// protocol in a READ ONLY transaction that is rolled back, so a smuggled
// second statement is refused, never run. A refusal is a *SelectError;
// other errors (connection, lock timeout) are returned wrapped.
func ValidateSelect(ctx context.Context, pool *pgxpool.Pool, table string, exprs []string, where string) error {
	schema, name, ok := strings.Cut(table, ".")
	if !ok || schema == "" || name == "" {
		return fmt.Errorf("validating selection: table %q is not schema.name", table)
	}
	if where != "" {
		if err := plan.CheckWhere(where); err != nil {
			se := &SelectError{Where: true, Expr: -1, Message: err.Error(), Err: err}
			var we *plan.WhereError
			if errors.As(err, &we) {
				se.Message, se.Position = we.Message, we.Position
			}
			return se
		}
	}

	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("validating selection on %s: %w", table, err)
	}
	// Nothing was written: rolling back cannot lose anything.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
		catalogLockTimeout, validateStatementTimeout); err != nil {
		return fmt.Errorf("validating selection on %s: %w", table, err)
	}

	selectList := "SELECT " + strings.Join(exprs, ", ")
	sel := selectList + " FROM " + pgx.Identifier{schema, name}.Sanitize()
	// First the columns alone, so a fault there is not blamed on the where.
	if err := explain(ctx, tx, sel); err != nil {
		return selectErr(err, func(pos int) (bool, int, int) {
			i, p := exprAt(exprs, pos-utf8.RuneCountInString("EXPLAIN SELECT "))
			return false, i, p
		})
	}
	if where == "" {
		return nil
	}
	prefix := "EXPLAIN " + sel + " WHERE ("
	if err := explain(ctx, tx, sel+" WHERE ("+where+")"); err != nil {
		return selectErr(err, func(pos int) (bool, int, int) {
			p := pos - utf8.RuneCountInString(prefix)
			if p < 1 || p > utf8.RuneCountInString(where)+1 {
				p = 0
			}
			return true, -1, p
		})
	}
	return nil
}

// explain runs EXPLAIN through the extended protocol (Parse/Bind/Execute),
// which takes exactly one statement.
func explain(ctx context.Context, tx pgx.Tx, sql string) error {
	return tx.Conn().PgConn().ExecParams(ctx, "EXPLAIN "+sql, nil, nil, nil, nil).Read().Err
}

// selectErr turns a server error into a *SelectError; place maps the
// statement position to (where?, expr, position within it).
func selectErr(err error, place func(pos int) (inWhere bool, expr, at int)) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || isInfrastructure(pgErr.Code) {
		return fmt.Errorf("validating selection: %w", err)
	}
	se := &SelectError{Expr: -1, Message: pgErr.Message, Code: pgErr.Code, Err: err}
	var inWhere bool
	inWhere, se.Expr, se.Position = place(int(pgErr.Position))
	se.Where = inWhere
	if pgErr.Position == 0 {
		se.Expr, se.Position = -1, 0
	}
	return se
}

// exprAt finds which expression a 1-based position within the joined
// select list falls in, and the position within it.
func exprAt(exprs []string, pos int) (int, int) {
	if pos < 1 {
		return -1, 0
	}
	start := 1
	for i, e := range exprs {
		n := utf8.RuneCountInString(e)
		if pos >= start && pos <= start+n {
			return i, pos - start + 1
		}
		start += n + len(", ")
	}
	return -1, 0
}

// isInfrastructure is true for errors that say nothing about the
// selection: lock and statement timeouts, lost connections, shutdowns.
func isInfrastructure(code string) bool {
	switch {
	case code == "55P03", code == "57014": // lock_not_available, query_canceled
		return true
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"), strings.HasPrefix(code, "53"):
		return true
	}
	return false
}
