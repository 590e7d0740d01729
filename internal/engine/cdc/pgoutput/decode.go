package pgoutput

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrMalformed is wrapped by every decoding error: the input is truncated,
// has trailing bytes, or holds a value the protocol does not allow.
var ErrMalformed = errors.New("malformed replication message")

// ErrUnknownMessage is wrapped (together with ErrMalformed) when the first
// byte names no message this package knows.
var ErrUnknownMessage = errors.New("unknown message type")

// pgEpochUnix is 2000-01-01 00:00:00 UTC, the epoch of PostgreSQL timestamps.
const pgEpochUnix = 946684800

// pgTime converts microseconds since 2000-01-01 UTC; time.Unix normalizes a
// negative remainder, and no intermediate can overflow.
func pgTime(us int64) time.Time {
	return time.Unix(pgEpochUnix+us/1e6, (us%1e6)*1e3).UTC()
}

// pgMicros is the inverse of pgTime.
func pgMicros(t time.Time) int64 {
	return (t.Unix()-pgEpochUnix)*1e6 + int64(t.Nanosecond()/1e3)
}

// reader decodes big-endian fields and remembers the first failure, so the
// parsers read straight through and check once at the end.
type reader struct {
	what string
	buf  []byte
	off  int
	err  error
	// alloc, when set, gives the columns of each tuple (ParseRowChange).
	alloc func(n int) Tuple
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d: %s", ErrMalformed, r.what, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) left() int { return len(r.buf) - r.off }

func (r *reader) next(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.left() {
		r.fail("%s needs %d bytes, %d left", field, n, r.left())
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8(field string) uint8 {
	if b := r.next(1, field); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(field string) uint16 {
	if b := r.next(2, field); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(field string) uint32 {
	if b := r.next(4, field); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(field string) uint64 {
	if b := r.next(8, field); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) lsn(field string) LSN { return LSN(r.u64(field)) }

func (r *reader) time(field string) time.Time {
	if b := r.next(8, field); b != nil {
		return pgTime(int64(binary.BigEndian.Uint64(b)))
	}
	return time.Time{}
}

// cstring reads a NUL-terminated string.
func (r *reader) cstring(field string) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.buf[r.off:], 0)
	if i < 0 {
		r.fail("%s is not NUL-terminated", field)
		return ""
	}
	s := string(r.buf[r.off : r.off+i])
	r.off += i + 1
	return s
}

// end reports the first failure, or trailing bytes: every message this
// package decodes has a fixed layout, so extra bytes mean a misread.
func (r *reader) end() error {
	if r.err == nil && r.left() != 0 {
		r.fail("%d trailing bytes", r.left())
	}
	return r.err
}

// ---- CopyBoth stream framing ----

// StreamMessage is what the server sends inside CopyData during
// START_REPLICATION: *XLogData or *PrimaryKeepalive.
type StreamMessage interface {
	streamMessage()
}

// XLogData carries one pgoutput message ('w').
type XLogData struct {
	WALStart     LSN // where Data starts in the WAL
	ServerWALEnd LSN // the server's current WAL end
	ServerTime   time.Time
	// Data is the pgoutput message, decoded by Parse. Unlike everything else
	// here it is a sub-slice of the input, because Parse copies it anyway.
	Data []byte
}

// PrimaryKeepalive is the server's heartbeat ('k').
type PrimaryKeepalive struct {
	ServerWALEnd   LSN
	ServerTime     time.Time
	ReplyRequested bool // answer with a standby status update soon
}

func (*XLogData) streamMessage()         {}
func (*PrimaryKeepalive) streamMessage() {}

// ParseStreamMessage decodes one CopyData payload received during
// START_REPLICATION.
func ParseStreamMessage(data []byte) (StreamMessage, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty CopyData", ErrMalformed)
	}
	switch data[0] {
	case 'w':
		m, err := ParseXLogData(data)
		if err != nil {
			return nil, err
		}
		return &m, nil
	case 'k':
		m, err := ParsePrimaryKeepalive(data)
		if err != nil {
			return nil, err
		}
		return &m, nil
	}
	return nil, fmt.Errorf("%w: %w: CopyData %q", ErrMalformed, ErrUnknownMessage, data[0])
}

// ParseXLogData decodes a 'w' CopyData payload, type byte included.
func ParseXLogData(data []byte) (XLogData, error) {
	r := reader{what: "XLogData", buf: data}
	if t := r.u8("type"); r.err == nil && t != 'w' {
		r.fail("type %q", t)
	}
	m := XLogData{
		WALStart:     r.lsn("WAL start"),
		ServerWALEnd: r.lsn("server WAL end"),
		ServerTime:   r.time("server time"),
	}
	if r.err != nil {
		return XLogData{}, r.err
	}
	m.Data = data[r.off:]
	return m, nil
}

// ParsePrimaryKeepalive decodes a 'k' CopyData payload, type byte included.
func ParsePrimaryKeepalive(data []byte) (PrimaryKeepalive, error) {
	r := reader{what: "primary keepalive", buf: data}
	if t := r.u8("type"); r.err == nil && t != 'k' {
		r.fail("type %q", t)
	}
	m := PrimaryKeepalive{
		ServerWALEnd:   r.lsn("server WAL end"),
		ServerTime:     r.time("server time"),
		ReplyRequested: r.u8("reply requested") != 0,
	}
	if err := r.end(); err != nil {
		return PrimaryKeepalive{}, err
	}
	return m, nil
}

// ---- pgoutput logical messages ----

// MessageType is the first byte of a pgoutput message.
type MessageType byte

// The pgoutput message types this package decodes.
const (
	MessageBegin        MessageType = 'B'
	MessageCommit       MessageType = 'C'
	MessageOrigin       MessageType = 'O'
	MessageRelation     MessageType = 'R'
	MessageDataType     MessageType = 'Y' // the protocol's "Type" message
	MessageInsert       MessageType = 'I'
	MessageUpdate       MessageType = 'U'
	MessageDelete       MessageType = 'D'
	MessageTruncate     MessageType = 'T'
	MessageLogical      MessageType = 'M'
	MessageStreamStart  MessageType = 'S'
	MessageStreamStop   MessageType = 'E'
	MessageStreamCommit MessageType = 'c'
	MessageStreamAbort  MessageType = 'A'
)

func (t MessageType) String() string {
	switch t {
	case MessageBegin:
		return "Begin"
	case MessageCommit:
		return "Commit"
	case MessageOrigin:
		return "Origin"
	case MessageRelation:
		return "Relation"
	case MessageDataType:
		return "Type"
	case MessageInsert:
		return "Insert"
	case MessageUpdate:
		return "Update"
	case MessageDelete:
		return "Delete"
	case MessageTruncate:
		return "Truncate"
	case MessageLogical:
		return "Message"
	case MessageStreamStart:
		return "StreamStart"
	case MessageStreamStop:
		return "StreamStop"
	case MessageStreamCommit:
		return "StreamCommit"
	case MessageStreamAbort:
		return "StreamAbort"
	}
	return fmt.Sprintf("MessageType(%q)", byte(t))
}

// Message is one decoded pgoutput message.
type Message interface {
	Type() MessageType
}

// Begin opens a transaction.
type Begin struct {
	FinalLSN   LSN // the commit's LSN
	CommitTime time.Time
	Xid        uint32
}

// Commit closes a transaction.
type Commit struct {
	Flags             uint8 // unused by the server so far
	CommitLSN         LSN
	TransactionEndLSN LSN // the position to confirm once the transaction is applied
	CommitTime        time.Time
}

// Origin names the replication origin a transaction came from.
type Origin struct {
	CommitLSN LSN // on the origin server
	Name      string
}

// ReplicaIdentity is a table's REPLICA IDENTITY setting.
type ReplicaIdentity byte

// Replica identities as pg_class.relreplident spells them.
const (
	ReplicaIdentityDefault ReplicaIdentity = 'd'
	ReplicaIdentityNothing ReplicaIdentity = 'n'
	ReplicaIdentityFull    ReplicaIdentity = 'f'
	ReplicaIdentityIndex   ReplicaIdentity = 'i'
)

// RelationColumn describes one column of a Relation.
type RelationColumn struct {
	Flags   uint8 // 1: part of the replica identity key
	Name    string
	TypeOID uint32
	TypeMod int32
}

// IsKey reports whether the column is part of the replica identity.
func (c RelationColumn) IsKey() bool { return c.Flags&1 != 0 }

// Relation describes a table before the first change to it in a session and
// again whenever its definition changed.
type Relation struct {
	Xid             uint32 // only inside a streamed transaction (protocol 2)
	RelationID      uint32
	Namespace       string
	Name            string
	ReplicaIdentity ReplicaIdentity
	Columns         []RelationColumn
}

// TypeMessage describes a non-built-in data type ('Y').
type TypeMessage struct {
	Xid       uint32 // only inside a streamed transaction (protocol 2)
	TypeOID   uint32
	Namespace string
	Name      string
}

// ColumnKind tells how a tuple column's value is sent.
type ColumnKind byte

// Column kinds of TupleData.
const (
	ColumnNull           ColumnKind = 'n'
	ColumnUnchangedToast ColumnKind = 'u' // TOASTed and unchanged: keep the target's value
	ColumnText           ColumnKind = 't'
	ColumnBinary         ColumnKind = 'b'
)

// TupleColumn is one column value. Data is nil for ColumnNull and
// ColumnUnchangedToast and never nil (possibly empty) for text and binary.
type TupleColumn struct {
	Kind ColumnKind
	Data []byte
}

// IsNull reports an SQL NULL. An unchanged TOAST column is not null.
func (c TupleColumn) IsNull() bool { return c.Kind == ColumnNull }

// IsUnchangedToast reports a TOASTed value the change left alone and the
// server did not send.
func (c TupleColumn) IsUnchangedToast() bool { return c.Kind == ColumnUnchangedToast }

// Tuple is a row's columns in Relation order.
type Tuple []TupleColumn

// OldTupleKind tells what an Update or Delete sends of the old row.
type OldTupleKind byte

// Old tuple kinds; OldTupleNone only on an Update that kept the key.
const (
	OldTupleNone OldTupleKind = 0
	OldTupleKey  OldTupleKind = 'K' // replica identity columns only, others null
	OldTupleFull OldTupleKind = 'O' // the whole row (REPLICA IDENTITY FULL)
)

// Insert is a new row.
type Insert struct {
	Xid        uint32 // only inside a streamed transaction (protocol 2)
	RelationID uint32
	New        Tuple
}

// Update is a changed row. Old is nil unless OldKind is set: with the default
// replica identity only a key change sends the old key.
type Update struct {
	Xid        uint32 // only inside a streamed transaction (protocol 2)
	RelationID uint32
	OldKind    OldTupleKind
	Old        Tuple
	New        Tuple
}

// Delete is a removed row, identified by its key or by the whole old row.
type Delete struct {
	Xid        uint32 // only inside a streamed transaction (protocol 2)
	RelationID uint32
	OldKind    OldTupleKind
	Old        Tuple
}

// Truncate options.
const (
	TruncateCascade         uint8 = 1
	TruncateRestartIdentity uint8 = 2
)

// Truncate empties one or more tables in one statement.
type Truncate struct {
	Xid         uint32 // only inside a streamed transaction (protocol 2)
	Options     uint8
	RelationIDs []uint32
}

// Cascade reports TRUNCATE … CASCADE.
func (m *Truncate) Cascade() bool { return m.Options&TruncateCascade != 0 }

// RestartIdentity reports TRUNCATE … RESTART IDENTITY.
func (m *Truncate) RestartIdentity() bool { return m.Options&TruncateRestartIdentity != 0 }

// LogicalMessage is a pg_logical_emit_message ('M'), sent only when
// START_REPLICATION asked for messages.
type LogicalMessage struct {
	Xid     uint32 // only inside a streamed transaction (protocol 2)
	Flags   uint8  // 1: transactional
	LSN     LSN
	Prefix  string
	Content []byte
}

// Transactional reports a message emitted as part of its transaction.
func (m *LogicalMessage) Transactional() bool { return m.Flags&1 != 0 }

// StreamStart opens a block of a large in-progress transaction (protocol 2).
type StreamStart struct {
	Xid          uint32
	FirstSegment bool
}

// StreamStop closes a block opened by StreamStart (protocol 2).
type StreamStop struct{}

// StreamCommit commits a streamed transaction (protocol 2).
type StreamCommit struct {
	Xid               uint32
	Flags             uint8
	CommitLSN         LSN
	TransactionEndLSN LSN
	CommitTime        time.Time
}

// StreamAbort aborts a streamed (sub)transaction (protocol 2). AbortLSN and
// AbortTime are sent only by protocol 4 with parallel streaming.
type StreamAbort struct {
	Xid       uint32
	SubXid    uint32
	AbortLSN  LSN
	AbortTime time.Time
}

// Type implements Message.
func (*Begin) Type() MessageType { return MessageBegin }

// Type implements Message.
func (*Commit) Type() MessageType { return MessageCommit }

// Type implements Message.
func (*Origin) Type() MessageType { return MessageOrigin }

// Type implements Message.
func (*Relation) Type() MessageType { return MessageRelation }

// Type implements Message.
func (*TypeMessage) Type() MessageType { return MessageDataType }

// Type implements Message.
func (*Insert) Type() MessageType { return MessageInsert }

// Type implements Message.
func (*Update) Type() MessageType { return MessageUpdate }

// Type implements Message.
func (*Delete) Type() MessageType { return MessageDelete }

// Type implements Message.
func (*Truncate) Type() MessageType { return MessageTruncate }

// Type implements Message.
func (*LogicalMessage) Type() MessageType { return MessageLogical }

// Type implements Message.
func (*StreamStart) Type() MessageType { return MessageStreamStart }

// Type implements Message.
func (*StreamStop) Type() MessageType { return MessageStreamStop }

// Type implements Message.
func (*StreamCommit) Type() MessageType { return MessageStreamCommit }

// Type implements Message.
func (*StreamAbort) Type() MessageType { return MessageStreamAbort }

// Parse decodes one pgoutput message (XLogData.Data) outside a streamed
// transaction: every protocol 1 message and the stream control messages of
// protocol 2. Messages inside a StreamStart … StreamStop block carry a
// transaction id; decode those with ParseStreamed, or let a Decoder track the
// blocks.
func Parse(data []byte) (Message, error) {
	return parse(data, false)
}

// ParseStreamed decodes one pgoutput message inside a StreamStart …
// StreamStop block (protocol 2), where data messages carry an xid.
func ParseStreamed(data []byte) (Message, error) {
	return parse(data, true)
}

// Decoder decodes a session's pgoutput messages in order, tracking streamed
// transaction blocks (protocol 2). The zero value is ready to use.
type Decoder struct {
	inStream bool
}

// Decode decodes the next message of the session.
func (d *Decoder) Decode(data []byte) (Message, error) {
	m, err := parse(data, d.inStream)
	if err != nil {
		return nil, err
	}
	switch m.(type) {
	case *StreamStart:
		d.inStream = true
	case *StreamStop:
		d.inStream = false
	}
	return m, nil
}

func parse(data []byte, streamed bool) (Message, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty pgoutput message", ErrMalformed)
	}
	// One copy up front: nothing decoded aliases the caller's buffer, which
	// pgconn reuses on the next receive.
	buf := bytes.Clone(data)
	t := MessageType(buf[0])
	r := &reader{what: t.String() + " message", buf: buf, off: 1}
	var xid uint32
	if streamed {
		switch t {
		case MessageRelation, MessageDataType, MessageInsert, MessageUpdate,
			MessageDelete, MessageTruncate, MessageLogical:
			xid = r.u32("xid")
		}
	}
	var m Message
	switch t {
	case MessageBegin:
		m = &Begin{FinalLSN: r.lsn("final LSN"), CommitTime: r.time("commit time"), Xid: r.u32("xid")}
	case MessageCommit:
		m = &Commit{Flags: r.u8("flags"), CommitLSN: r.lsn("commit LSN"),
			TransactionEndLSN: r.lsn("end LSN"), CommitTime: r.time("commit time")}
	case MessageOrigin:
		m = &Origin{CommitLSN: r.lsn("commit LSN"), Name: r.cstring("name")}
	case MessageRelation:
		m = parseRelation(r, xid)
	case MessageDataType:
		m = &TypeMessage{Xid: xid, TypeOID: r.u32("type OID"), Namespace: r.cstring("namespace"), Name: r.cstring("name")}
	case MessageInsert:
		ins := &Insert{Xid: xid}
		parseInsertInto(r, ins)
		m = ins
	case MessageUpdate:
		m = parseUpdate(r, xid)
	case MessageDelete:
		del := &Delete{Xid: xid}
		parseDeleteInto(r, del)
		m = del
	case MessageTruncate:
		m = parseTruncate(r, xid)
	case MessageLogical:
		lm := &LogicalMessage{Xid: xid, Flags: r.u8("flags"), LSN: r.lsn("LSN"), Prefix: r.cstring("prefix")}
		n := r.u32("content length")
		if r.err == nil && uint64(n) > uint64(r.left()) {
			r.fail("content length %d, %d bytes left", n, r.left())
		}
		lm.Content = r.next(int(n), "content")
		m = lm
	case MessageStreamStart:
		xid := r.u32("xid")
		m = &StreamStart{Xid: xid, FirstSegment: r.u8("first segment") != 0}
	case MessageStreamStop:
		m = &StreamStop{}
	case MessageStreamCommit:
		m = &StreamCommit{Xid: r.u32("xid"), Flags: r.u8("flags"), CommitLSN: r.lsn("commit LSN"),
			TransactionEndLSN: r.lsn("end LSN"), CommitTime: r.time("commit time")}
	case MessageStreamAbort:
		a := &StreamAbort{Xid: r.u32("xid"), SubXid: r.u32("subxact xid")}
		if r.err == nil && r.left() > 0 {
			a.AbortLSN, a.AbortTime = r.lsn("abort LSN"), r.time("abort time")
		}
		m = a
	default:
		return nil, fmt.Errorf("%w: %w: pgoutput %q", ErrMalformed, ErrUnknownMessage, buf[0])
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return m, nil
}

func parseRelation(r *reader, xid uint32) *Relation {
	rel := &Relation{
		Xid:             xid,
		RelationID:      r.u32("relation ID"),
		Namespace:       r.cstring("namespace"),
		Name:            r.cstring("name"),
		ReplicaIdentity: ReplicaIdentity(r.u8("replica identity")),
	}
	n := int(r.u16("column count"))
	// Each column takes at least 10 bytes; check before allocating so a
	// forged count cannot make us allocate.
	if r.err == nil && n*10 > r.left() {
		r.fail("%d columns in %d bytes", n, r.left())
	}
	if r.err != nil {
		return rel
	}
	rel.Columns = make([]RelationColumn, n)
	for i := range rel.Columns {
		rel.Columns[i] = RelationColumn{
			Flags:   r.u8("column flags"),
			Name:    r.cstring("column name"),
			TypeOID: r.u32("column type OID"),
			TypeMod: int32(r.u32("column type modifier")),
		}
	}
	return rel
}

func parseUpdate(r *reader, xid uint32) *Update {
	up := &Update{Xid: xid}
	parseUpdateInto(r, up)
	return up
}

func parseUpdateInto(r *reader, up *Update) {
	up.RelationID = r.u32("relation ID")
	k := r.u8("tuple kind")
	if k == 'K' || k == 'O' {
		up.OldKind = OldTupleKind(k)
		up.Old = parseTuple(r, oldTuple)
		k = r.u8("tuple kind")
	}
	if r.err == nil && k != 'N' {
		r.fail("new tuple marked %q, want 'N'", k)
	}
	up.New = parseTuple(r, newTuple)
}

func parseInsertInto(r *reader, ins *Insert) {
	ins.RelationID = r.u32("relation ID")
	if k := r.u8("tuple kind"); r.err == nil && k != 'N' {
		r.fail("new tuple marked %q, want 'N'", k)
	}
	ins.New = parseTuple(r, newTuple)
}

func parseDeleteInto(r *reader, del *Delete) {
	del.RelationID = r.u32("relation ID")
	del.OldKind = OldTupleKind(r.u8("old tuple kind"))
	if r.err == nil && del.OldKind != OldTupleKey && del.OldKind != OldTupleFull {
		r.fail("old tuple marked %q, want 'K' or 'O'", byte(del.OldKind))
	}
	del.Old = parseTuple(r, oldTuple)
}

// RowChange is an Insert, Update or Delete as ParseRowChange decodes it.
type RowChange struct {
	Type       MessageType // MessageInsert, MessageUpdate or MessageDelete
	RelationID uint32
	OldKind    OldTupleKind
	Old, New   Tuple
}

// ParseRowChange decodes an Insert, Update or Delete message (outside a
// streamed transaction) without allocating: the values alias data, which
// must stay unchanged while they are used, and the columns of each tuple
// come from alloc(n), which must return n zero-valued columns. It is the
// hot path of a catch-up, where Parse's copy and allocations per message
// cost more than decoding. ok is false, with no error, for other messages.
func ParseRowChange(data []byte, alloc func(n int) Tuple) (c RowChange, ok bool, err error) {
	if len(data) == 0 {
		return RowChange{}, false, nil
	}
	t := MessageType(data[0])
	r := reader{what: t.String() + " message", buf: data, off: 1, alloc: alloc}
	switch t {
	case MessageInsert:
		var ins Insert
		parseInsertInto(&r, &ins)
		c = RowChange{Type: t, RelationID: ins.RelationID, New: ins.New}
	case MessageUpdate:
		var up Update
		parseUpdateInto(&r, &up)
		c = RowChange{Type: t, RelationID: up.RelationID, OldKind: up.OldKind, Old: up.Old, New: up.New}
	case MessageDelete:
		var del Delete
		parseDeleteInto(&r, &del)
		c = RowChange{Type: t, RelationID: del.RelationID, OldKind: del.OldKind, Old: del.Old}
	default:
		return RowChange{}, false, nil
	}
	if err := r.end(); err != nil {
		return RowChange{}, true, err
	}
	return c, true, nil
}

func parseTruncate(r *reader, xid uint32) *Truncate {
	tr := &Truncate{Xid: xid}
	n := r.u32("relation count")
	tr.Options = r.u8("options")
	if r.err == nil && uint64(n)*4 != uint64(r.left()) {
		r.fail("%d relation IDs in %d bytes", n, r.left())
	}
	if r.err != nil {
		return tr
	}
	tr.RelationIDs = make([]uint32, n)
	for i := range tr.RelationIDs {
		tr.RelationIDs[i] = r.u32("relation ID")
	}
	return tr
}

// tupleField names a tuple's fields in error messages, built once: a
// name built per call cost an allocation per value decoded.
type tupleField struct{ name, count, kind, length, value string }

func newTupleField(name string) tupleField {
	return tupleField{name, name + " column count", name + " column kind", name + " column length", name + " column value"}
}

var (
	newTuple = newTupleField("new tuple")
	oldTuple = newTupleField("old tuple")
)

func parseTuple(r *reader, f tupleField) Tuple {
	n := int(r.u16(f.count))
	// Each column takes at least one byte.
	if r.err == nil && n > r.left() {
		r.fail("%s: %d columns in %d bytes", f.name, n, r.left())
	}
	if r.err != nil {
		return nil
	}
	var t Tuple
	if r.alloc != nil {
		t = r.alloc(n)
	} else {
		t = make(Tuple, n)
	}
	for i := range t {
		kind := ColumnKind(r.u8(f.kind))
		if r.err != nil {
			return nil
		}
		switch kind {
		case ColumnNull, ColumnUnchangedToast:
			t[i] = TupleColumn{Kind: kind}
		case ColumnText, ColumnBinary:
			size := r.u32(f.length)
			if r.err == nil && uint64(size) > uint64(r.left()) {
				r.fail("%s column %d: length %d, %d bytes left", f.name, i+1, size, r.left())
			}
			d := r.next(int(size), f.value)
			if r.err != nil {
				return nil
			}
			// Cap the slice so an append by the caller cannot scribble
			// over the next column.
			t[i] = TupleColumn{Kind: kind, Data: d[:len(d):len(d)]}
		default:
			r.fail("%s column %d: kind %q", f.name, i+1, byte(kind))
			return nil
		}
	}
	return t
}
