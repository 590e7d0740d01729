package plan

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// pgType is a type name taken apart: the canonical base name as
// format_type prints it, its modifiers and whether it is an array.
type pgType struct {
	base  string // "integer", "character varying", "timestamp with time zone", `shop."Mood"`
	mods  []int  // typmod arguments: length, precision, scale
	array bool
}

// String prints the type as format_type does.
func (t pgType) String() string {
	s := t.base
	if len(t.mods) > 0 {
		ms := make([]string, len(t.mods))
		for i, m := range t.mods {
			ms[i] = strconv.Itoa(m)
		}
		mod := "(" + strings.Join(ms, ",") + ")"
		if z, ok := strings.CutPrefix(s, "timestamp "); ok {
			s = "timestamp" + mod + " " + z
		} else if z, ok := strings.CutPrefix(s, "time "); ok {
			s = "time" + mod + " " + z
		} else {
			s += mod
		}
	}
	if t.array {
		s += "[]"
	}
	return s
}

var typeAliases = map[string]string{
	"int": "integer", "int4": "integer", "integer": "integer",
	"int2": "smallint", "smallint": "smallint",
	"int8": "bigint", "bigint": "bigint",
	"float4": "real", "real": "real",
	"float8": "double precision", "double precision": "double precision", "float": "double precision",
	"decimal": "numeric", "numeric": "numeric",
	"bool": "boolean", "boolean": "boolean",
	"varchar": "character varying", "character varying": "character varying", "char varying": "character varying",
	"char": "character", "character": "character",
	"timestamptz": "timestamp with time zone", "timestamp with time zone": "timestamp with time zone",
	"timestamp": "timestamp without time zone", "timestamp without time zone": "timestamp without time zone",
	"timetz": "time with time zone", "time with time zone": "time with time zone",
	"time": "time without time zone", "time without time zone": "time without time zone",
	"varbit": "bit varying", "bit varying": "bit varying",
}

// typeShape: a base name, optional (modifiers), optional zone clause.
var typeShape = regexp.MustCompile(`^([a-z_][a-z0-9_ ]*?)\s*(?:\(\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?\))?\s*(with time zone|without time zone)?$`)

// parseType takes apart a type as format_type prints it or as a user
// writes it in cast:TYPE; aliases (int8, varchar, timestamptz, ...) become
// their canonical names. Names it does not know (user types, quoted names)
// are kept, lower-cased outside quotes.
func parseType(s string) pgType {
	s = strings.TrimSpace(s)
	var t pgType
	for {
		trimmed := strings.TrimSpace(s)
		if !strings.HasSuffix(trimmed, "]") {
			break
		}
		open := strings.LastIndexByte(trimmed, '[')
		if open < 0 {
			break
		}
		t.array = true
		s = trimmed[:open]
	}
	s = strings.TrimSpace(s)
	if strings.Contains(s, `"`) {
		t.base = s
		return t
	}
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	s = strings.TrimPrefix(s, "pg_catalog.")
	m := typeShape.FindStringSubmatch(s)
	if m == nil {
		t.base = s
		return t
	}
	base, zone := strings.TrimSpace(m[1]), m[4]
	if zone != "" {
		base += " " + zone
	}
	if c, ok := typeAliases[base]; ok {
		base = c
	}
	for _, g := range m[2:4] {
		if g != "" {
			n, _ := strconv.Atoi(g)
			t.mods = append(t.mods, n)
		}
	}
	switch base {
	case "double precision":
		// float(p) is real up to 24 bits of precision.
		if len(t.mods) == 1 && t.mods[0] <= 24 {
			base = "real"
		}
		t.mods = nil
	case "numeric":
		if len(t.mods) == 1 {
			t.mods = append(t.mods, 0)
		}
	case "character", "bit":
		if len(t.mods) == 0 {
			t.mods = []int{1}
		}
	case "bpchar":
		if len(t.mods) > 0 {
			base = "character"
		}
	}
	t.base = base
	return t
}

// canonicalType is parseType's canonical spelling: equal strings mean the
// same type.
func canonicalType(s string) string { return parseType(s).String() }

var intWidth = map[string]int{"smallint": 2, "integer": 4, "bigint": 8}

// intDigits is how many decimal digits each integer type may need.
var intDigits = map[string]int{"smallint": 5, "integer": 10, "bigint": 19}

func isTextLike(t pgType) bool {
	if t.array {
		return false
	}
	switch t.base {
	case "text", "character varying", "character", "bpchar", "name":
		return true
	}
	return false
}

func isTimeLike(base string) bool {
	switch base {
	case "timestamp with time zone", "timestamp without time zone", "date",
		"time with time zone", "time without time zone":
		return true
	}
	return false
}

// narrowing says how a value of type from can lose something when cast
// to type to: the risk kind and a sentence, or "" when the cast keeps
// every value.
func narrowing(from, to string) (kind, why string) {
	f, t := parseType(from), parseType(to)
	if f.String() == t.String() {
		return "", ""
	}
	if f.array != t.array {
		return RiskNarrowing, fmt.Sprintf("%s and %s are not both arrays: values that do not convert make the load fail", f, t)
	}
	fw, fInt := intWidth[f.base]
	tw, tInt := intWidth[t.base]
	switch {
	case fInt && tInt:
		if tw < fw {
			return RiskNarrowing, fmt.Sprintf("%s holds smaller numbers than %s: a value out of range makes the load fail", t, f)
		}
		return "", ""
	case fInt && t.base == "numeric":
		if len(t.mods) == 2 && t.mods[0]-t.mods[1] < intDigits[f.base] {
			return RiskNarrowing, fmt.Sprintf("%s holds at most %d integer digits, %s up to %d: a larger value makes the load fail",
				t, t.mods[0]-t.mods[1], f, intDigits[f.base])
		}
		return "", ""
	case fInt && (t.base == "double precision" || t.base == "real"):
		digits := map[string]int{"real": 6, "double precision": 15}[t.base]
		if intDigits[f.base] > digits {
			return RiskNarrowing, fmt.Sprintf("%s keeps about %d significant digits: larger %s values are rounded", t, digits, f)
		}
		return "", ""
	case f.base == "numeric" && t.base == "numeric":
		if len(t.mods) == 0 {
			return "", ""
		}
		if len(f.mods) == 0 {
			return RiskNarrowing, fmt.Sprintf("%s has a fixed precision and scale and %s has none: extra decimals are rounded and a larger value makes the load fail", t, f)
		}
		fi, ti := f.mods[0]-f.mods[1], t.mods[0]-t.mods[1]
		switch {
		case ti < fi && t.mods[1] < f.mods[1]:
			return RiskNarrowing, fmt.Sprintf("%s holds %d integer digits and %d decimals, %s holds %d and %d: decimals are rounded and a larger value makes the load fail",
				t, ti, t.mods[1], f, fi, f.mods[1])
		case ti < fi:
			return RiskNarrowing, fmt.Sprintf("%s holds %d integer digits, %s holds %d: a larger value makes the load fail", t, ti, f, fi)
		case t.mods[1] < f.mods[1]:
			return RiskNarrowing, fmt.Sprintf("%s keeps %d decimals, %s keeps %d: the extra decimals are rounded", t, t.mods[1], f, f.mods[1])
		}
		return "", ""
	case (f.base == "numeric" || f.base == "double precision" || f.base == "real") && tInt:
		return RiskNarrowing, fmt.Sprintf("%s holds no fractions: %s values are rounded to whole numbers, and one out of range makes the load fail", t, f)
	case f.base == "double precision" && t.base == "real":
		return RiskNarrowing, "real keeps about 6 significant digits, double precision about 15: values are rounded"
	case f.base == "numeric" && (t.base == "double precision" || t.base == "real"):
		return RiskNarrowing, fmt.Sprintf("%s is a binary floating-point type: exact %s values may be rounded", t, f)
	case isTextLike(f) && isTextLike(t):
		fl, tl := -1, -1
		if len(f.mods) == 1 {
			fl = f.mods[0]
		}
		if len(t.mods) == 1 {
			tl = t.mods[0]
		}
		switch {
		case tl < 0:
			return "", ""
		case fl < 0:
			return RiskNarrowing, fmt.Sprintf("%s holds at most %d characters and %s any number: longer values are cut to %d characters without an error", t, tl, f, tl)
		case tl < fl:
			return RiskTruncation, fmt.Sprintf("%s holds at most %d characters, %s up to %d: longer values are cut to %d characters without an error", t, tl, f, fl, tl)
		}
		return "", ""
	case isTimeLike(f.base) && isTimeLike(t.base):
		switch {
		case t.base == "date":
			return RiskNarrowing, fmt.Sprintf("date has no time of day: the time of every %s value is dropped", f)
		case f.base == "date":
			return "", ""
		case f.base == "timestamp with time zone" && t.base == "timestamp without time zone":
			return RiskNarrowing, "timestamp without time zone drops the zone: values are converted to the copying session's time zone (the source server's TimeZone setting) and the offset is lost"
		case strings.HasPrefix(f.base, "timestamp") && strings.HasPrefix(t.base, "time "):
			return RiskNarrowing, fmt.Sprintf("%s has no date: the date of every %s value is dropped", t, f)
		case len(t.mods) == 1 && (len(f.mods) == 0 || t.mods[0] < f.mods[0]):
			return RiskNarrowing, fmt.Sprintf("%s keeps %d fractional digits of a second: finer values are rounded", t, t.mods[0])
		}
		return "", ""
	case isTextLike(t):
		if len(t.mods) == 1 {
			return RiskNarrowing, fmt.Sprintf("%s holds at most %d characters: longer text forms of %s values are cut without an error", t, t.mods[0], f)
		}
		return "", ""
	}
	return RiskNarrowing, fmt.Sprintf("%s values that are not valid %s make the load fail", f, t)
}

// typeNameShape admits a type name as a user writes it after "cast:":
// words (optionally quoted, optionally schema-qualified), numeric
// modifiers in parentheses and array brackets — nothing that could end
// the cast expression it is put in.
var typeNameShape = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")(?:\s*\.\s*(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"))?` +
	`(?:\s+[A-Za-z_][A-Za-z0-9_]*)*` +
	`(?:\s*\(\s*-?\d+\s*(?:,\s*-?\d+\s*)?\))?` +
	`(?:\s+[A-Za-z_][A-Za-z0-9_]*)*` +
	`(?:\s*\[\s*\d*\s*\])*$`)

func validTypeName(s string) bool { return typeNameShape.MatchString(strings.TrimSpace(s)) }
