package copy //nolint:predeclared // see doc.go

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/plan"
)

// chunkSpec is one planned chunk: the rows of rel that match the bounds.
type chunkSpec struct {
	rel    plan.Name // the relation read: the table itself or a leaf partition
	method string
	key    []string
	lo, hi []string // nil is open
}

// sampleRowsPerChunk is how many sampled keys back each range boundary
// (enough for even chunks; the sample stays small next to the table).
const (
	sampleRowsPerChunk = 50
	maxSampleRows      = 200_000
)

// keyKind says how a table's key splits.
type keyKind int

const (
	keyNone   keyKind = iota // no usable key: ctid block ranges
	keyInt                   // one integer column: equal ranges between min and max
	keySample                // anything else: boundaries from a sample
)

// planChunks splits the source table src into chunks of about chunkBytes,
// reading through conn (inside the load's snapshot). It returns the chunks
// and the bytes they cover.
func planChunks(ctx context.Context, conn *pgx.Conn, src plan.Name, key []string, chunkBytes int64) ([]chunkSpec, int64, error) {
	var relkind string
	var version int
	if err := conn.QueryRow(ctx, `SELECT relkind::text, current_setting('server_version_num')::int
		FROM pg_class WHERE oid = $1::regclass`, ident(src)).Scan(&relkind, &version); err != nil {
		return nil, 0, fmt.Errorf("reading source table: %w", err)
	}
	type leaf struct {
		name    plan.Name
		relkind string
	}
	leaves := []leaf{{src, relkind}}
	if relkind == "p" {
		leaves = nil
		rows, err := conn.Query(ctx, `
			WITH RECURSIVE tree(relid) AS (
				SELECT $1::regclass::oid
				UNION ALL
				SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid
			)
			SELECT n.nspname, c.relname, c.relkind::text
			FROM tree t
			JOIN pg_class c ON c.oid = t.relid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind <> 'p'
			ORDER BY n.nspname, c.relname`, ident(src))
		if err != nil {
			return nil, 0, fmt.Errorf("listing partitions: %w", err)
		}
		for rows.Next() {
			var l leaf
			if err := rows.Scan(&l.name.Schema, &l.name.Name, &l.relkind); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("listing partitions: %w", err)
			}
			leaves = append(leaves, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, fmt.Errorf("listing partitions: %w", err)
		}
		if len(leaves) == 0 {
			// No partition holds a row; one chunk keeps the table's bookkeeping uniform.
			return []chunkSpec{{rel: src, method: methodAll}}, 0, nil
		}
	}

	kind, err := classifyKey(ctx, conn, src, key)
	if err != nil {
		return nil, 0, err
	}
	tidRanges := version >= 140000 // before 14, a ctid range is a full scan with a filter
	var all []chunkSpec
	var total int64
	for _, l := range leaves {
		ctidOK := l.relkind == "r" && tidRanges
		specs, bytes, err := planRelation(ctx, conn, l.name, ctidOK, kind, key, chunkBytes)
		if err != nil {
			return nil, 0, fmt.Errorf("planning chunks of %s: %w", l.name, err)
		}
		all = append(all, specs...)
		total += bytes
	}
	return all, total, nil
}

// classifyKey checks key against the source: a key with a nullable column
// cannot bound ranges (a NULL is in no range), so it falls back to ctid.
func classifyKey(ctx context.Context, conn *pgx.Conn, src plan.Name, key []string) (keyKind, error) {
	if len(key) == 0 {
		return keyNone, nil
	}
	rows, err := conn.Query(ctx, `
		SELECT a.attname, a.atttypid::regtype::text, a.attnotnull
		FROM pg_attribute a
		WHERE a.attrelid = $1::regclass AND a.attname = ANY($2) AND a.attnum > 0 AND NOT a.attisdropped`,
		ident(src), key)
	if err != nil {
		return keyNone, fmt.Errorf("reading key columns of %s: %w", src, err)
	}
	types := map[string]string{}
	notNull := true
	for rows.Next() {
		var name, typ string
		var nn bool
		if err := rows.Scan(&name, &typ, &nn); err != nil {
			rows.Close()
			return keyNone, fmt.Errorf("reading key columns of %s: %w", src, err)
		}
		types[name] = typ
		notNull = notNull && nn
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return keyNone, fmt.Errorf("reading key columns of %s: %w", src, err)
	}
	for _, k := range key {
		if _, ok := types[k]; !ok {
			return keyNone, fmt.Errorf("key column %q of %s does not exist", k, src)
		}
	}
	switch {
	case !notNull:
		return keyNone, nil
	case len(key) == 1 && (types[key[0]] == "bigint" || types[key[0]] == "integer" || types[key[0]] == "smallint"):
		return keyInt, nil
	default:
		return keySample, nil
	}
}

// planRelation splits one relation; ctidOK says whether it can be read by
// ctid ranges (a heap table on a server with TID range scans).
func planRelation(ctx context.Context, conn *pgx.Conn, rel plan.Name, ctidOK bool, kind keyKind, key []string, chunkBytes int64) ([]chunkSpec, int64, error) {
	var bytes, pages int64
	var tuples float64
	if err := conn.QueryRow(ctx, `
		SELECT pg_table_size(c.oid), pg_relation_size(c.oid) / current_setting('block_size')::bigint, c.reltuples::float8
		FROM pg_class c WHERE c.oid = $1::regclass`, ident(rel)).Scan(&bytes, &pages, &tuples); err != nil {
		return nil, 0, fmt.Errorf("reading size: %w", err)
	}
	n := chunkCount(bytes, chunkBytes)
	whole := []chunkSpec{{rel: rel, method: methodAll}}
	if n == 1 {
		return whole, bytes, nil
	}
	var bounds [][]string
	switch kind {
	case keyInt:
		var lo, hi *string
		if err := conn.QueryRow(ctx,
			fmt.Sprintf(`SELECT min(%[1]s)::text, max(%[1]s)::text FROM ONLY %[2]s`, identList(key), ident(rel))).
			Scan(&lo, &hi); err != nil {
			return nil, 0, fmt.Errorf("reading key range: %w", err)
		}
		if lo == nil || hi == nil {
			return whole, bytes, nil
		}
		b, err := intBounds(*lo, *hi, n)
		if err != nil {
			return nil, 0, err
		}
		for _, v := range b {
			bounds = append(bounds, []string{v})
		}
	case keySample:
		samples, err := sampleKeys(ctx, conn, rel, key, n, pages, tuples)
		if err != nil {
			return nil, 0, err
		}
		bounds = sampleBounds(samples, n)
	default:
		if !ctidOK {
			return whole, bytes, nil
		}
		for _, b := range blockBounds(pages, n) {
			bounds = append(bounds, []string{fmt.Sprint(b)})
		}
	}
	method := methodRange
	if kind == keyNone {
		method, key = methodCtid, nil
	}
	specs := make([]chunkSpec, 0, len(bounds)+1)
	var lo []string
	for _, b := range bounds {
		specs = append(specs, chunkSpec{rel: rel, method: method, key: key, lo: lo, hi: b})
		lo = b
	}
	specs = append(specs, chunkSpec{rel: rel, method: method, key: key, lo: lo})
	return specs, bytes, nil
}

// chunkCount is how many chunks of about chunkBytes cover bytes: at least one.
func chunkCount(bytes, chunkBytes int64) int {
	if bytes <= chunkBytes || chunkBytes <= 0 {
		return 1
	}
	n := (bytes + chunkBytes - 1) / chunkBytes
	return int(min(n, math.MaxInt32))
}

// intBounds splits [lo, hi] into at most n equal ranges and returns the n-1
// (or fewer) inner boundaries, each the first value of its range.
func intBounds(lo, hi string, n int) ([]string, error) {
	a, ok := new(big.Int).SetString(lo, 10)
	if !ok {
		return nil, fmt.Errorf("key minimum %q is not an integer", lo)
	}
	b, ok := new(big.Int).SetString(hi, 10)
	if !ok {
		return nil, fmt.Errorf("key maximum %q is not an integer", hi)
	}
	span := new(big.Int).Sub(b, a)
	span.Add(span, big.NewInt(1))
	if span.Cmp(big.NewInt(int64(n))) < 0 {
		n = int(span.Int64())
	}
	var out []string
	for i := 1; i < n; i++ {
		v := new(big.Int).Mul(span, big.NewInt(int64(i)))
		v.Quo(v, big.NewInt(int64(n)))
		v.Add(v, a)
		out = append(out, v.String())
	}
	return out, nil
}

// blockBounds splits pages blocks into at most n ranges and returns the
// inner boundaries (block numbers).
func blockBounds(pages int64, n int) []int64 {
	if pages < int64(n) {
		n = int(pages)
	}
	var out []int64
	for i := 1; i < n; i++ {
		out = append(out, pages*int64(i)/int64(n))
	}
	return out
}

// sampleKeys reads key values (as text, sorted by key) from a TABLESAMPLE of
// rel sized to give about sampleRowsPerChunk rows per chunk.
func sampleKeys(ctx context.Context, conn *pgx.Conn, rel plan.Name, key []string, n int, pages int64, tuples float64) ([][]string, error) {
	perPage := 50.0
	if tuples > 0 && pages > 0 {
		perPage = max(tuples/float64(pages), 1)
	}
	want := min(float64(n*sampleRowsPerChunk), maxSampleRows)
	wantPages := max(want/perPage, float64(4*n))
	pct := 100.0
	if pages > 0 {
		pct = min(100, 100*wantPages/float64(pages))
	}
	// Qualified names: a bare ORDER BY name would sort the text outputs.
	cols := make([]string, len(key))
	order := make([]string, len(key))
	for i, k := range key {
		order[i] = "s." + pgx.Identifier{k}.Sanitize()
		cols[i] = order[i] + "::text"
	}
	sql := fmt.Sprintf(`SELECT %s FROM ONLY %s AS s TABLESAMPLE SYSTEM ($1) ORDER BY %s`,
		strings.Join(cols, ", "), ident(rel), strings.Join(order, ", "))
	rows, err := conn.Query(ctx, sql, pct)
	if err != nil {
		return nil, fmt.Errorf("sampling keys: %w", err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]string, len(key))
		dest := make([]any, len(key))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("sampling keys: %w", err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sampling keys: %w", err)
	}
	return out, nil
}

// sampleBounds picks n-1 boundaries at even quantiles of sorted samples,
// skipping repeats.
func sampleBounds(samples [][]string, n int) [][]string {
	var out [][]string
	for i := 1; i < n; i++ {
		j := i * len(samples) / n
		if j == 0 || j >= len(samples) {
			continue
		}
		if len(out) > 0 && slices.Equal(out[len(out)-1], samples[j]) {
			continue
		}
		out = append(out, samples[j])
	}
	return out
}
