package pgoutput

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a PostgreSQL write-ahead log position.
type LSN uint64

// String formats the LSN as PostgreSQL does: "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN parses the "X/Y" form PostgreSQL prints (two hexadecimal numbers
// of at most 32 bits each).
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parsing LSN %q: missing '/'", s)
	}
	h, err := parseLSNHalf(hi)
	if err != nil {
		return 0, fmt.Errorf("parsing LSN %q: %w", s, err)
	}
	l, err := parseLSNHalf(lo)
	if err != nil {
		return 0, fmt.Errorf("parsing LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

func parseLSNHalf(s string) (uint64, error) {
	// ParseUint alone would accept a sign or "0x" prefix; PostgreSQL does not.
	if s == "" || len(s) > 8 {
		return 0, fmt.Errorf("want 1 to 8 hex digits, got %q", s)
	}
	if i := strings.IndexFunc(s, notHex); i >= 0 {
		return 0, fmt.Errorf("invalid hex digit %q", s[i])
	}
	return strconv.ParseUint(s, 16, 32)
}

func notHex(c rune) bool {
	return (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F')
}
