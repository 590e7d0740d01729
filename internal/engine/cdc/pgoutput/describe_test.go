package pgoutput

import (
	"fmt"
	"strings"
	"testing"
)

// describe renders a message without what varies between runs (LSNs, xids,
// OIDs of user objects, times) so that tests compare streams exactly.
func describe(m Message, rels map[uint32]*Relation) string {
	relName := func(id uint32) string {
		if r, ok := rels[id]; ok {
			return r.Namespace + "." + r.Name
		}
		return fmt.Sprintf("relation(%d)", id)
	}
	switch m := m.(type) {
	case *Begin:
		return "BEGIN"
	case *Commit:
		return "COMMIT"
	case *Origin:
		return fmt.Sprintf("ORIGIN %s %s", m.Name, m.CommitLSN)
	case *TypeMessage:
		return fmt.Sprintf("TYPE %s.%s", m.Namespace, m.Name)
	case *Relation:
		cols := make([]string, len(m.Columns))
		for i, c := range m.Columns {
			typ := fmt.Sprint(c.TypeOID)
			if c.TypeOID >= 16384 {
				typ = "user"
			}
			cols[i] = fmt.Sprintf("%s:%s:%d", c.Name, typ, c.TypeMod)
			if c.IsKey() {
				cols[i] += ":key"
			}
		}
		return fmt.Sprintf("RELATION %s.%s identity=%c (%s)", m.Namespace, m.Name, m.ReplicaIdentity, strings.Join(cols, ", "))
	case *Insert:
		return fmt.Sprintf("INSERT %s new=%s", relName(m.RelationID), describeTuple(m.New))
	case *Update:
		if m.OldKind == OldTupleNone {
			return fmt.Sprintf("UPDATE %s new=%s", relName(m.RelationID), describeTuple(m.New))
		}
		return fmt.Sprintf("UPDATE %s old%c=%s new=%s", relName(m.RelationID), m.OldKind, describeTuple(m.Old), describeTuple(m.New))
	case *Delete:
		return fmt.Sprintf("DELETE %s old%c=%s", relName(m.RelationID), m.OldKind, describeTuple(m.Old))
	case *Truncate:
		names := make([]string, len(m.RelationIDs))
		for i, id := range m.RelationIDs {
			names[i] = relName(id)
		}
		return fmt.Sprintf("TRUNCATE %s cascade=%t restart_identity=%t", strings.Join(names, ","), m.Cascade(), m.RestartIdentity())
	case *LogicalMessage:
		return fmt.Sprintf("MESSAGE transactional=%t %s %q", m.Transactional(), m.Prefix, m.Content)
	}
	return fmt.Sprintf("%T", m)
}

func describeTuple(t Tuple) string {
	vals := make([]string, len(t))
	for i, c := range t {
		switch c.Kind {
		case ColumnNull:
			vals[i] = "NULL"
		case ColumnUnchangedToast:
			vals[i] = "<unchanged toast>"
		case ColumnBinary:
			vals[i] = fmt.Sprintf("b:%x", c.Data)
		default:
			if len(c.Data) > 24 {
				vals[i] = fmt.Sprintf("%s…(%d bytes)", c.Data[:10], len(c.Data))
			} else {
				vals[i] = string(c.Data)
			}
		}
	}
	return "(" + strings.Join(vals, "|") + ")"
}

// expectedStream is what the integration test's workload decodes to; the
// captured testdata must decode to the same.
var expectedStream = []string{
	// INSERT id 1 with a TOASTed (external, uncompressed) big column.
	"BEGIN",
	"TYPE public.mood",
	"RELATION public.items identity=f (id:23:-1:key, name:25:-1:key, big:25:-1:key, m:user:-1:key, amount:1700:655366:key)",
	"INSERT public.items new=(1|one|abcdefghij…(10000 bytes)|happy|1.50)",
	"COMMIT",
	"BEGIN",
	"INSERT public.items new=(2|two|small|NULL|NULL)",
	"COMMIT",
	// The big column is left alone: 'u' in the new tuple, not NULL.
	"BEGIN",
	"UPDATE public.items oldO=(1|one|abcdefghij…(10000 bytes)|happy|1.50) new=(1|uno|<unchanged toast>|happy|1.50)",
	"COMMIT",
	"BEGIN",
	"UPDATE public.items oldO=(2|two|small|NULL|NULL) new=(2|two|NULL|NULL|NULL)",
	"COMMIT",
	"BEGIN",
	"DELETE public.items oldO=(2|two|NULL|NULL|NULL)",
	"COMMIT",
	// Default replica identity: old key only when the key changes.
	"BEGIN",
	"RELATION public.Keyed identity=d (id:23:-1:key, v:25:-1)",
	"INSERT public.Keyed new=(10|ten)",
	"UPDATE public.Keyed oldK=(10|NULL) new=(11|ten)",
	"UPDATE public.Keyed new=(11|eleven)",
	"DELETE public.Keyed oldK=(11|NULL)",
	"COMMIT",
	"BEGIN",
	`MESSAGE transactional=true migration "hello"`,
	"COMMIT",
	`MESSAGE transactional=false migration "outside"`,
	"BEGIN",
	"ORIGIN upstream 0/AB",
	"INSERT public.items new=(3|three|x|sad|3.00)",
	"COMMIT",
	// TRUNCATE gives the tables new relfilenodes; pgoutput re-sends their
	// schema after the relcache invalidation.
	"BEGIN",
	"TYPE public.mood",
	"RELATION public.items identity=f (id:23:-1:key, name:25:-1:key, big:25:-1:key, m:user:-1:key, amount:1700:655366:key)",
	"RELATION public.Keyed identity=d (id:23:-1:key, v:25:-1)",
	"TRUNCATE public.items,public.Keyed cascade=true restart_identity=true",
	"COMMIT",
}

// checkStream decodes a captured stream of XLogData frames, compares it with
// expectedStream and checks the LSN bookkeeping. It returns the last commit.
func checkStream(t *testing.T, frames [][]byte) *Commit {
	t.Helper()
	rels := map[uint32]*Relation{}
	var got []string
	var begin *Begin
	var last *Commit
	for i, f := range frames {
		sm, err := ParseStreamMessage(f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		x, ok := sm.(*XLogData)
		if !ok {
			t.Fatalf("frame %d: %T, want *XLogData", i, sm)
		}
		m, err := Parse(x.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		switch m := m.(type) {
		case *Relation:
			rels[m.RelationID] = m
		case *Begin:
			if begin != nil {
				t.Errorf("frame %d: Begin inside a transaction", i)
			}
			begin = m
		case *Commit:
			if begin == nil {
				t.Fatalf("frame %d: Commit without Begin", i)
			}
			if m.CommitLSN != begin.FinalLSN {
				t.Errorf("frame %d: commit LSN %s, Begin announced %s", i, m.CommitLSN, begin.FinalLSN)
			}
			if m.TransactionEndLSN <= m.CommitLSN {
				t.Errorf("frame %d: end LSN %s not after commit LSN %s", i, m.TransactionEndLSN, m.CommitLSN)
			}
			if last != nil && m.CommitLSN <= last.CommitLSN {
				t.Errorf("frame %d: commit LSN %s not after the previous %s", i, m.CommitLSN, last.CommitLSN)
			}
			if m.CommitTime.Year() < 2020 {
				t.Errorf("frame %d: commit time %s", i, m.CommitTime)
			}
			begin, last = nil, m
		}
		got = append(got, describe(m, rels))
	}
	if strings.Join(got, "\n") != strings.Join(expectedStream, "\n") {
		t.Errorf("decoded stream:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(expectedStream, "\n"))
	}
	if last == nil {
		t.Fatal("no Commit in the stream")
	}
	return last
}
