package copy //nolint:predeclared // see doc.go

import (
	"slices"
	"strings"
	"testing"
)

func TestIntBounds(t *testing.T) {
	for _, tc := range []struct {
		lo, hi string
		n      int
		want   []string
	}{
		{"1", "100", 4, []string{"26", "51", "76"}},
		{"1", "3", 5, []string{"2", "3"}},
		{"7", "7", 3, nil},
		{"-9223372036854775808", "9223372036854775807", 2, []string{"0"}},
		{"-10", "9", 2, []string{"0"}},
	} {
		got, err := intBounds(tc.lo, tc.hi, tc.n)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("intBounds(%s, %s, %d) = %v, %v; want %v", tc.lo, tc.hi, tc.n, got, err, tc.want)
		}
	}
	if _, err := intBounds("1", "x", 2); err == nil {
		t.Error("intBounds accepted a non-integer")
	}
}

func TestBlockBounds(t *testing.T) {
	if got := blockBounds(100, 4); !slices.Equal(got, []int64{25, 50, 75}) {
		t.Errorf("blockBounds(100, 4) = %v", got)
	}
	if got := blockBounds(2, 5); !slices.Equal(got, []int64{1}) {
		t.Errorf("blockBounds(2, 5) = %v", got)
	}
	if got := blockBounds(0, 5); got != nil {
		t.Errorf("blockBounds(0, 5) = %v", got)
	}
}

func TestSampleBounds(t *testing.T) {
	s := [][]string{{"a"}, {"a"}, {"a"}, {"b"}, {"c"}, {"d"}}
	if got := sampleBounds(s, 3); !slices.EqualFunc(got, [][]string{{"a"}, {"c"}}, slices.Equal) {
		t.Errorf("sampleBounds = %v", got)
	}
	if got := sampleBounds(s[:1], 4); got != nil {
		t.Errorf("sampleBounds of one sample = %v", got)
	}
}

func TestChunkCount(t *testing.T) {
	for _, tc := range []struct {
		bytes, chunk int64
		want         int
	}{{0, 64, 1}, {64, 64, 1}, {65, 64, 2}, {1000, 100, 10}} {
		if got := chunkCount(tc.bytes, tc.chunk); got != tc.want {
			t.Errorf("chunkCount(%d, %d) = %d, want %d", tc.bytes, tc.chunk, got, tc.want)
		}
	}
}

func TestPredicate(t *testing.T) {
	for _, tc := range []struct {
		method      string
		key, lo, hi []string
		want        string
	}{
		{methodAll, nil, nil, nil, "true"},
		{methodCtid, nil, nil, []string{"10"}, `ctid < '(10,0)'::tid`},
		{methodCtid, nil, []string{"10"}, []string{"20"}, `ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid`},
		{methodCtid, nil, []string{"20"}, nil, `ctid >= '(20,0)'::tid`},
		{methodRange, []string{"id"}, []string{"5"}, []string{"9"}, `"id" >= '5' AND "id" < '9'`},
		{methodRange, []string{"a", "B"}, []string{"x'y", `c:\d`}, nil, `("a", "B") >= ('x''y', E'c:\\d')`},
	} {
		got, err := predicate(tc.method, tc.key, tc.lo, tc.hi)
		if err != nil || got != tc.want {
			t.Errorf("predicate(%s, %v, %v, %v) = %q, %v; want %q", tc.method, tc.key, tc.lo, tc.hi, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		method      string
		key, lo, hi []string
	}{
		{methodCtid, nil, []string{"1); DROP TABLE x; --"}, nil},
		{methodRange, []string{"a", "b"}, []string{"1"}, nil},
		{methodRange, []string{"a"}, []string{"nul\x00"}, nil},
		{methodRange, nil, []string{"1"}, nil},
		{"other", nil, nil, nil},
	} {
		if got, err := predicate(bad.method, bad.key, bad.lo, bad.hi); err == nil {
			t.Errorf("predicate(%s, %v, %v, %v) = %q; want an error", bad.method, bad.key, bad.lo, bad.hi, got)
		}
	}
}

func TestQuoteSnapshot(t *testing.T) {
	if got, err := quoteSnapshot("00000003-0000001B-1"); err != nil || got != "'00000003-0000001B-1'" {
		t.Errorf("quoteSnapshot = %q, %v", got, err)
	}
	for _, bad := range []string{"", "x'; DROP", "1 2", strings.Repeat("é", 3)} {
		if _, err := quoteSnapshot(bad); err == nil {
			t.Errorf("quoteSnapshot(%q) accepted", bad)
		}
	}
}
