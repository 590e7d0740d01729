package pgoutput

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to every decoder: none may panic, every
// failure must wrap ErrMalformed, and what decodes must be consistent.
func FuzzParse(f *testing.F) {
	for _, frame := range loadCaptured(f) {
		// The two 10 kB TOAST frames would make the fuzzer spend its time
		// minimizing their mutants; a short update with the same shape is
		// seeded below, and TestCapturedStream covers the originals.
		if len(frame) > 1024 {
			continue
		}
		f.Add(frame)
		if x, err := ParseXLogData(frame); err == nil {
			f.Add(x.Data)
		}
	}
	f.Add(b(byte('U'), uint32(5), byte('O'), uint16(2), byte('t'), uint32(1), byte('1'), byte('t'), uint32(3), "ab",
		byte('N'), uint16(2), byte('t'), uint32(1), byte('1'), byte('u')))
	f.Add(b(byte('k'), uint64(1), uint64(2), byte(1)))
	f.Add(Applied(0x1_0000_0000).Encode())
	f.Add(b(byte('S'), uint32(900), byte(1)))
	f.Add(b(byte('I'), uint32(900), uint32(5), byte('N'), uint16(1), byte('b'), uint32(1), byte('x')))
	f.Add(b(byte('A'), uint32(900), uint32(901), uint64(30), uint64(1)))
	f.Add([]byte("16/B374D848"))

	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: error %v does not wrap ErrMalformed", what, err)
			}
		}
		if sm, err := ParseStreamMessage(data); err == nil {
			if x, ok := sm.(*XLogData); ok {
				_, err := Parse(x.Data)
				check("Parse(XLogData.Data)", err)
			}
		} else {
			check("ParseStreamMessage", err)
		}
		m, err := Parse(data)
		check("Parse", err)
		if err == nil && m.Type() != MessageType(data[0]) {
			t.Fatalf("Parse(%q) gave a %s", data[0], m.Type())
		}
		// The allocation-free decoder agrees with Parse on row changes.
		rc, ok, rerr := ParseRowChange(data, func(n int) Tuple { return make(Tuple, n) })
		check("ParseRowChange", rerr)
		if ok && (rerr == nil) != (err == nil) {
			t.Fatalf("ParseRowChange error %v, Parse error %v", rerr, err)
		}
		if ok && rerr == nil {
			var want RowChange
			switch m := m.(type) {
			case *Insert:
				want = RowChange{Type: MessageInsert, RelationID: m.RelationID, New: m.New}
			case *Update:
				want = RowChange{Type: MessageUpdate, RelationID: m.RelationID, OldKind: m.OldKind, Old: m.Old, New: m.New}
			case *Delete:
				want = RowChange{Type: MessageDelete, RelationID: m.RelationID, OldKind: m.OldKind, Old: m.Old}
			default:
				t.Fatalf("ParseRowChange decoded a %s", m.Type())
			}
			if !reflect.DeepEqual(rc, want) {
				t.Fatalf("ParseRowChange gave %+v, Parse %+v", rc, want)
			}
		}
		_, err = ParseStreamed(data)
		check("ParseStreamed", err)
		var d Decoder
		_, err = d.Decode(data)
		check("Decoder.Decode", err)
		if s, err := ParseStandbyStatus(data); err == nil {
			// Re-encoding gives the same bytes whenever the reply flag is
			// in canonical form: the time conversion is exact.
			if enc := s.Encode(); data[len(data)-1] <= 1 && !bytes.Equal(enc, data) {
				t.Fatalf("standby status %x re-encoded as %x", data, enc)
			}
		} else {
			check("ParseStandbyStatus", err)
		}
		if l, err := ParseLSN(string(data)); err == nil {
			if back, err := ParseLSN(l.String()); err != nil || back != l {
				t.Fatalf("LSN %q: round trip gave %s, %v", data, back, err)
			}
		}
	})
}
