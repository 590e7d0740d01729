package plan

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// WhereError is a where clause that cannot be one boolean expression in
// parentheses: a statement separator, unbalanced parentheses, an
// unterminated quote. The server's parser checks the rest.
type WhereError struct {
	// Position is the 1-based character position of the fault in the clause.
	Position int
	Message  string
}

func (e *WhereError) Error() string {
	return fmt.Sprintf("%s (at character %d)", e.Message, e.Position)
}

// CheckWhere rejects a where clause that could end the parenthesis the
// copier puts it in, or the statement: the copier selects
// `... WHERE (<where>)`, so `1=1) UNION SELECT ... (` or `true; DROP ...`
// must never reach a server. Line comments are refused too: one would
// swallow the closing parenthesis.
func CheckWhere(where string) error {
	if strings.TrimSpace(where) == "" {
		return &WhereError{Position: 1, Message: "the where clause is blank; leave it unset to copy every row"}
	}
	depth := 0
	lastOpen := []int{}
	err := scanSQL(where, func(tok sqlToken) error {
		if tok.kind != tokPunct {
			return nil
		}
		switch tok.text {
		case ";":
			return &WhereError{Position: tok.pos, Message: "the where clause must be one expression; it contains a ';'"}
		case "(":
			depth++
			lastOpen = append(lastOpen, tok.pos)
		case ")":
			depth--
			if depth < 0 {
				return &WhereError{Position: tok.pos, Message: "the where clause closes a parenthesis it never opened"}
			}
			lastOpen = lastOpen[:len(lastOpen)-1]
		}
		return nil
	})
	if err != nil {
		return err
	}
	if depth > 0 {
		return &WhereError{Position: lastOpen[len(lastOpen)-1], Message: "the where clause opens a parenthesis it never closes"}
	}
	return nil
}

type tokKind int

const (
	tokIdent  tokKind = iota // a bare word: keyword, function, type or column name (lower-cased)
	tokQuoted                // a double-quoted identifier (unquoted)
	tokString                // a string constant of any kind
	tokNumber
	tokPunct // one character of anything else (operators come one character at a time)
)

type sqlToken struct {
	kind tokKind
	text string
	pos  int // 1-based character position
}

// scanSQL splits SQL text into tokens, skipping white space and block
// comments, and calls fn for each; a line comment, an unterminated
// quote or comment is an error. It knows enough of PostgreSQL's lexer to
// find identifiers, strings and punctuation, not to parse.
func scanSQL(s string, fn func(sqlToken) error) error {
	i := 0
	pos := func(byteOff int) int { return utf8.RuneCountInString(s[:byteOff]) + 1 }
	isIdentStart := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	isIdentChar := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
	for i < len(s) {
		c := s[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			return &WhereError{Position: pos(i), Message: "comments (--) are not allowed here"}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			// Block comments nest in PostgreSQL.
			depth := 0
			for i < len(s) {
				switch {
				case strings.HasPrefix(s[i:], "/*"):
					depth++
					i += 2
				case strings.HasPrefix(s[i:], "*/"):
					depth--
					i += 2
				default:
					i++
				}
				if depth == 0 {
					break
				}
			}
			if depth != 0 {
				return &WhereError{Position: pos(start), Message: "a comment is never closed"}
			}
		case c == '\'' || (c == 'e' || c == 'E') && i+1 < len(s) && s[i+1] == '\'':
			backslash := c != '\''
			if backslash {
				i++
			}
			i++
			closed := false
			for i < len(s) {
				switch {
				case backslash && s[i] == '\\':
					i += 2
				case s[i] == '\'' && i+1 < len(s) && s[i+1] == '\'':
					i += 2
				case s[i] == '\'':
					i++
					closed = true
				default:
					i++
				}
				if closed {
					break
				}
			}
			if !closed {
				return &WhereError{Position: pos(start), Message: "a string constant is never closed"}
			}
			if err := fn(sqlToken{kind: tokString, text: s[start:i], pos: pos(start)}); err != nil {
				return err
			}
		case c == '"':
			i++
			var b strings.Builder
			closed := false
			for i < len(s) && !closed {
				switch {
				case s[i] == '"' && i+1 < len(s) && s[i+1] == '"':
					b.WriteByte('"')
					i += 2
				case s[i] == '"':
					i++
					closed = true
				default:
					b.WriteByte(s[i])
					i++
				}
			}
			if !closed {
				return &WhereError{Position: pos(start), Message: "a quoted identifier is never closed"}
			}
			if err := fn(sqlToken{kind: tokQuoted, text: b.String(), pos: pos(start)}); err != nil {
				return err
			}
		case c == '$' && i+1 < len(s) && (s[i+1] == '$' || isIdentStart(s[i+1])):
			// A dollar-quoted string: $tag$ ... $tag$.
			j := i + 1
			for j < len(s) && s[j] != '$' && isIdentChar(s[j]) {
				j++
			}
			if j >= len(s) || s[j] != '$' {
				return &WhereError{Position: pos(start), Message: "a '$' that starts no dollar-quoted string"}
			}
			tag := s[i : j+1]
			end := strings.Index(s[j+1:], tag)
			if end < 0 {
				return &WhereError{Position: pos(start), Message: "a dollar-quoted string is never closed"}
			}
			i = j + 1 + end + len(tag)
			if err := fn(sqlToken{kind: tokString, text: s[start:i], pos: pos(start)}); err != nil {
				return err
			}
		case isIdentStart(c):
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
			if err := fn(sqlToken{kind: tokIdent, text: strings.ToLower(s[start:i]), pos: pos(start)}); err != nil {
				return err
			}
		case c >= '0' && c <= '9':
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '_' || isIdentStart(s[i])) {
				i++
			}
			if err := fn(sqlToken{kind: tokNumber, text: s[start:i], pos: pos(start)}); err != nil {
				return err
			}
		default:
			i++
			if err := fn(sqlToken{kind: tokPunct, text: s[start:i], pos: pos(start)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// referencedColumns returns which of names an expression printed by the
// server (a generation expression, a CHECK, a partition key, an index
// predicate) refers to. A bare word followed by '(' is a function and one
// after '::' or '.' a type or a qualified name's part; string constants
// are skipped. It may over-report (a column named like a keyword), never
// under-report a reference, which is the safe side for deciding what to skip.
func referencedColumns(expr string, names map[string]bool) []string {
	var toks []sqlToken
	if err := scanSQL(expr, func(t sqlToken) error { toks = append(toks, t); return nil }); err != nil {
		// Unscannable: assume it refers to everything.
		out := make([]string, 0, len(names))
		for n := range names {
			out = append(out, n)
		}
		return sortedUnique(out)
	}
	var out []string
	for k, t := range toks {
		if t.kind != tokIdent && t.kind != tokQuoted {
			continue
		}
		if !names[t.text] {
			continue
		}
		if t.kind == tokIdent {
			if k+1 < len(toks) && toks[k+1].text == "(" {
				continue
			}
			if k >= 2 && toks[k-1].text == ":" && toks[k-2].text == ":" {
				continue
			}
		}
		out = append(out, t.text)
	}
	return sortedUnique(out)
}

// scanIdent reads one identifier at the start of s as the server prints
// it (quoted when needed), returning its value and the rest of s.
func scanIdent(s string) (ident, rest string, ok bool) {
	if s == "" {
		return "", s, false
	}
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] == '"' {
				if i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				return b.String(), s[i+1:], true
			}
			b.WriteByte(s[i])
		}
		return "", s, false
	}
	i := 0
	for i < len(s) && s[i] != ' ' && s[i] != '.' && s[i] != '(' {
		i++
	}
	if i == 0 {
		return "", s, false
	}
	return s[:i], s[i:], true
}

// scanQualified reads schema.name at the start of s.
func scanQualified(s string) (schema, name, rest string, ok bool) {
	schema, rest, ok = scanIdent(s)
	if !ok || !strings.HasPrefix(rest, ".") {
		return "", "", s, false
	}
	name, rest, ok = scanIdent(rest[1:])
	if !ok {
		return "", "", s, false
	}
	return schema, name, rest, true
}

// quoteLiteral quotes s as a string constant the way quote_literal does,
// valid whatever standard_conforming_strings says.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
	}
	return q
}

// dollarQuote wraps body in a dollar quote whose tag body does not contain.
func dollarQuote(body string) string {
	tag := "$migration$"
	for n := 1; strings.Contains(body, tag); n++ {
		tag = fmt.Sprintf("$migration%d$", n)
	}
	return tag + body + tag
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	m := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !m[v] {
			m[v] = true
			out = append(out, v)
		}
	}
	sortStrings(out)
	return out
}
