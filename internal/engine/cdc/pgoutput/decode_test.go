package pgoutput

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadCaptured reads the frames TestReplicationStream captured from a real
// PostgreSQL 15, in stream order.
func loadCaptured(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "index.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var frames [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", line))
		if err != nil {
			tb.Fatal(err)
		}
		frames = append(frames, b)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(frames) == 0 {
		tb.Fatal("testdata/index.txt lists no frames")
	}
	return frames
}

func TestCapturedStream(t *testing.T) {
	frames := loadCaptured(t)
	checkStream(t, frames)

	// The update that left the TOASTed column alone: 'u', which is not NULL.
	x, err := ParseXLogData(frames[9])
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(x.Data)
	if err != nil {
		t.Fatal(err)
	}
	up, ok := m.(*Update)
	if !ok {
		t.Fatalf("frame 9 is %T, want *Update", m)
	}
	big := up.New[2]
	if !big.IsUnchangedToast() || big.IsNull() || big.Data != nil {
		t.Errorf("unchanged TOAST column = %+v", big)
	}
	if old := up.Old[2]; old.Kind != ColumnText || len(old.Data) != 10000 {
		t.Errorf("old tuple's TOASTed column: kind %q, %d bytes", old.Kind, len(old.Data))
	}
	if x.WALStart == 0 || x.ServerWALEnd < x.WALStart || x.ServerTime.Year() < 2020 {
		t.Errorf("XLogData header = %+v", x)
	}
}

// Every proper prefix of a real message, and a real message with a byte
// appended, is an error wrapping ErrMalformed, never a panic.
func TestCapturedTruncatedAndExtended(t *testing.T) {
	for i, f := range loadCaptured(t) {
		x, err := ParseXLogData(f)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(x.Data) {
			if m, err := Parse(x.Data[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("frame %d cut to %d bytes: %T, %v", i, n, m, err)
			}
		}
		if m, err := Parse(append(bytes.Clone(x.Data), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("frame %d with a trailing byte: %T, %v", i, m, err)
		}
		for n := range 25 {
			if _, err := ParseXLogData(f[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("XLogData header cut to %d bytes: %v", n, err)
			}
		}
	}
}

// Decoded messages must survive pgconn reusing its read buffer.
func TestParseDoesNotAlias(t *testing.T) {
	msg := []byte{'M', 1, 0, 0, 0, 0, 0, 0, 0, 7, 'p', 0, 0, 0, 0, 2, 'h', 'i'}
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msg {
		msg[i] = 0xff
	}
	lm, ok := m.(*LogicalMessage)
	if !ok || string(lm.Content) != "hi" || lm.Prefix != "p" || lm.LSN != 7 || !lm.Transactional() {
		t.Errorf("after overwriting the input: %+v", m)
	}
}

// b builds a message from bytes, strings (NUL-terminated) and fixed-width
// integers.
func b(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case byte:
			out = append(out, p)
		case string:
			out = append(append(out, p...), 0)
		case []byte:
			out = append(out, p...)
		case uint16:
			out = binary.BigEndian.AppendUint16(out, p)
		case uint32:
			out = binary.BigEndian.AppendUint32(out, p)
		case uint64:
			out = binary.BigEndian.AppendUint64(out, p)
		default:
			panic(p)
		}
	}
	return out
}

func TestParseMessages(t *testing.T) {
	ts := time.Date(2024, 2, 29, 12, 30, 1, 123456000, time.UTC)
	us := uint64(pgMicros(ts))
	tests := []struct {
		name     string
		streamed bool
		in       []byte
		check    func(t *testing.T, m Message)
	}{
		{"begin", false, b(byte('B'), uint64(0x1_0000_0010), us, uint32(77)), func(t *testing.T, m Message) {
			if g, ok := m.(*Begin); !ok || g.FinalLSN != 0x1_0000_0010 || !g.CommitTime.Equal(ts) || g.Xid != 77 {
				t.Errorf("%+v", m)
			}
		}},
		{"commit", false, b(byte('C'), byte(0), uint64(10), uint64(20), us), func(t *testing.T, m Message) {
			if g, ok := m.(*Commit); !ok || g.CommitLSN != 10 || g.TransactionEndLSN != 20 || !g.CommitTime.Equal(ts) {
				t.Errorf("%+v", m)
			}
		}},
		{"binary and empty text columns", false,
			b(byte('I'), uint32(5), byte('N'), uint16(3), byte('b'), uint32(2), []byte{0xde, 0xad}, byte('t'), uint32(0), byte('n')),
			func(t *testing.T, m Message) {
				g, ok := m.(*Insert)
				if !ok || g.RelationID != 5 || len(g.New) != 3 {
					t.Fatalf("%+v", m)
				}
				if c := g.New[0]; c.Kind != ColumnBinary || !bytes.Equal(c.Data, []byte{0xde, 0xad}) {
					t.Errorf("binary column %+v", c)
				}
				if c := g.New[1]; c.Kind != ColumnText || c.Data == nil || len(c.Data) != 0 || c.IsNull() {
					t.Errorf("empty text column %+v", c)
				}
				if c := g.New[2]; !c.IsNull() || c.IsUnchangedToast() {
					t.Errorf("null column %+v", c)
				}
			}},
		{"update without old tuple", false, b(byte('U'), uint32(5), byte('N'), uint16(1), byte('u')), func(t *testing.T, m Message) {
			if g, ok := m.(*Update); !ok || g.OldKind != OldTupleNone || g.Old != nil || !g.New[0].IsUnchangedToast() {
				t.Errorf("%+v", m)
			}
		}},
		{"truncate", false, b(byte('T'), uint32(2), TruncateRestartIdentity, uint32(8), uint32(9)), func(t *testing.T, m Message) {
			if g, ok := m.(*Truncate); !ok || g.Cascade() || !g.RestartIdentity() || len(g.RelationIDs) != 2 || g.RelationIDs[1] != 9 {
				t.Errorf("%+v", m)
			}
		}},
		{"streamed insert", true, b(byte('I'), uint32(900), uint32(5), byte('N'), uint16(1), byte('t'), uint32(1), byte('x')), func(t *testing.T, m Message) {
			if g, ok := m.(*Insert); !ok || g.Xid != 900 || g.RelationID != 5 || string(g.New[0].Data) != "x" {
				t.Errorf("%+v", m)
			}
		}},
		{"streamed relation", true, b(byte('R'), uint32(900), uint32(5), "s", "t", byte('d'), uint16(1), byte(1), "id", uint32(23), uint32(0xffffffff)), func(t *testing.T, m Message) {
			if g, ok := m.(*Relation); !ok || g.Xid != 900 || g.Name != "t" || !g.Columns[0].IsKey() || g.Columns[0].TypeMod != -1 {
				t.Errorf("%+v", m)
			}
		}},
		{"stream start", false, b(byte('S'), uint32(900), byte(1)), func(t *testing.T, m Message) {
			if g, ok := m.(*StreamStart); !ok || g.Xid != 900 || !g.FirstSegment {
				t.Errorf("%+v", m)
			}
		}},
		{"stream commit", false, b(byte('c'), uint32(900), byte(0), uint64(10), uint64(20), us), func(t *testing.T, m Message) {
			if g, ok := m.(*StreamCommit); !ok || g.Xid != 900 || g.CommitLSN != 10 || g.TransactionEndLSN != 20 {
				t.Errorf("%+v", m)
			}
		}},
		{"stream abort v2", false, b(byte('A'), uint32(900), uint32(901)), func(t *testing.T, m Message) {
			if g, ok := m.(*StreamAbort); !ok || g.Xid != 900 || g.SubXid != 901 || g.AbortLSN != 0 {
				t.Errorf("%+v", m)
			}
		}},
		{"stream abort v4", false, b(byte('A'), uint32(900), uint32(901), uint64(30), us), func(t *testing.T, m Message) {
			if g, ok := m.(*StreamAbort); !ok || g.AbortLSN != 30 || !g.AbortTime.Equal(ts) {
				t.Errorf("%+v", m)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := Parse
			if tt.streamed {
				parse = ParseStreamed
			}
			m, err := parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":                 nil,
		"unknown type":          {'Z'},
		"insert without N":      b(byte('I'), uint32(5), byte('K'), uint16(0)),
		"delete without K or O": b(byte('D'), uint32(5), byte('N'), uint16(0)),
		"unknown column kind":   b(byte('I'), uint32(5), byte('N'), uint16(1), byte('x')),
		"column length past end": b(byte('I'), uint32(5), byte('N'), uint16(1), byte('t'),
			uint32(0xffffffff), byte('x')),
		"huge column count":       b(byte('I'), uint32(5), byte('N'), uint16(65535), byte('n')),
		"huge relation count":     b(byte('T'), uint32(0x40000000), byte(0), uint32(1)),
		"unterminated string":     {'O', 0, 0, 0, 0, 0, 0, 0, 1, 'x'},
		"message length past end": b(byte('M'), byte(0), uint64(1), "p", uint32(3), byte('x')),
	} {
		t.Run(name, func(t *testing.T) {
			m, err := Parse(in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", m, err)
			}
			if name == "unknown type" && !errors.Is(err, ErrUnknownMessage) {
				t.Errorf("%v does not wrap ErrUnknownMessage", err)
			}
		})
	}
}

func TestDecoderTracksStreams(t *testing.T) {
	var d Decoder
	insert := b(byte('I'), uint32(5), byte('N'), uint16(0))
	streamedInsert := b(byte('I'), uint32(900), uint32(5), byte('N'), uint16(0))
	steps := []struct {
		in  []byte
		xid uint32
	}{
		{insert, 0},
		{b(byte('S'), uint32(900), byte(1)), 0},
		{streamedInsert, 900},
		{[]byte{'E'}, 0},
		{insert, 0},
	}
	for i, s := range steps {
		m, err := d.Decode(s.in)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if ins, ok := m.(*Insert); ok && ins.Xid != s.xid {
			t.Errorf("step %d: xid %d, want %d", i, ins.Xid, s.xid)
		}
	}
}

func TestKeepalive(t *testing.T) {
	ts := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	in := b(byte('k'), uint64(0x16_B374D848), uint64(pgMicros(ts)), byte(1))
	sm, err := ParseStreamMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := sm.(*PrimaryKeepalive)
	if !ok || k.ServerWALEnd.String() != "16/B374D848" || !k.ServerTime.Equal(ts) || !k.ReplyRequested {
		t.Errorf("%+v", sm)
	}
	if _, err := ParseStreamMessage(append(in, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("keepalive with a trailing byte: %v", err)
	}
	if _, err := ParseStreamMessage([]byte{'q'}); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("unknown CopyData: %v", err)
	}
}

func TestStandbyStatusEncoding(t *testing.T) {
	ts := time.Date(2000, 1, 1, 0, 0, 1, 500, time.UTC) // 1 s after the epoch; ns below µs dropped
	s := Applied(0x2_0000_0100)
	s.ClientTime = ts
	s.ReplyRequested = true
	want := b(byte('r'), uint64(0x2_0000_0100), uint64(0x2_0000_0100), uint64(0x2_0000_0100), uint64(1_000_000), byte(1))
	if got := s.Encode(); !bytes.Equal(got, want) {
		t.Errorf("Encode = %x, want %x", got, want)
	}
	back, err := ParseStandbyStatus(want)
	if err != nil {
		t.Fatal(err)
	}
	if back.Flush != s.Flush || back.Write != s.Write || back.Apply != s.Apply || !back.ReplyRequested ||
		!back.ClientTime.Equal(ts.Truncate(time.Microsecond)) {
		t.Errorf("ParseStandbyStatus = %+v", back)
	}
	// A zero ClientTime means now.
	now, err := ParseStandbyStatus(Applied(1).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now.ClientTime); d < 0 || d > time.Minute {
		t.Errorf("zero ClientTime encoded as %s", now.ClientTime)
	}
}

func TestPgTimeBeforeEpoch(t *testing.T) {
	ts := time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	if got := pgTime(pgMicros(ts)); !got.Equal(ts) {
		t.Errorf("round trip of %s = %s", ts, got)
	}
}

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/AB"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		if l.String() != s {
			t.Errorf("ParseLSN(%q).String() = %q", s, l)
		}
	}
	if l, _ := ParseLSN("16/b374d848"); l != 0x16_B374D848 {
		t.Errorf("lower case: %d", l)
	}
	for _, s := range []string{"", "0", "/0", "0/", "1/2/3", "+1/0", "0x1/0", "100000000/0", "g/0", "-1/0", " 0/0"} {
		if l, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) = %s, want an error", s, l)
		}
	}
}

func TestQuoting(t *testing.T) {
	got, err := publicationNames([]string{"pub", `Pub "Keyed"`, "it's"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"pub","Pub ""Keyed""","it's"`; got != want {
		t.Errorf("publicationNames = %s, want %s", got, want)
	}
	if q := quoteLiteral(got); q != `'"pub","Pub ""Keyed""","it''s"'` {
		t.Errorf("quoteLiteral = %s", q)
	}
	for _, bad := range [][]string{nil, {""}, {"a\x00b"}, {strings.Repeat("p", 64)}} {
		if _, err := publicationNames(bad); err == nil {
			t.Errorf("publicationNames(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"a", "0slot", "slot_1", strings.Repeat("s", 63)} {
		if err := ValidateSlotName(ok); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range []string{"", "Slot", "a-b", "a b", `a"`, strings.Repeat("s", 64)} {
		if ValidateSlotName(bad) == nil {
			t.Errorf("ValidateSlotName(%q) accepted", bad)
		}
	}
}
