package pgoutput

import (
	"encoding/binary"
	"time"
)

// StandbyStatus is the client's position report ('r'). The server keeps WAL
// and sets the slot's confirmed_flush_lsn from Flush, so a caller reports only
// what it has durably applied to the target (see Applied), never what it has
// merely received.
type StandbyStatus struct {
	Write LSN
	Flush LSN
	Apply LSN
	// ClientTime is sent as microseconds since 2000-01-01; zero means now.
	ClientTime time.Time
	// ReplyRequested asks the server to answer with a keepalive at once.
	ReplyRequested bool
}

// Applied is the status for a client that has durably applied everything up
// to lsn: all three positions are lsn.
func Applied(lsn LSN) StandbyStatus {
	return StandbyStatus{Write: lsn, Flush: lsn, Apply: lsn}
}

const standbyStatusLen = 1 + 8*4 + 1

// Encode returns the CopyData payload of the status update.
func (s StandbyStatus) Encode() []byte {
	return s.AppendEncode(make([]byte, 0, standbyStatusLen))
}

// AppendEncode appends the CopyData payload of the status update to b.
func (s StandbyStatus) AppendEncode(b []byte) []byte {
	t := s.ClientTime
	if t.IsZero() {
		t = time.Now()
	}
	b = append(b, 'r')
	b = binary.BigEndian.AppendUint64(b, uint64(s.Write))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Flush))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Apply))
	b = binary.BigEndian.AppendUint64(b, uint64(pgMicros(t)))
	if s.ReplyRequested {
		return append(b, 1)
	}
	return append(b, 0)
}

// ParseStandbyStatus decodes an 'r' payload (what Encode produced).
func ParseStandbyStatus(data []byte) (StandbyStatus, error) {
	r := reader{what: "standby status update", buf: data}
	if t := r.u8("type"); r.err == nil && t != 'r' {
		r.fail("type %q", t)
	}
	s := StandbyStatus{
		Write:          r.lsn("write LSN"),
		Flush:          r.lsn("flush LSN"),
		Apply:          r.lsn("apply LSN"),
		ClientTime:     r.time("client time"),
		ReplyRequested: r.u8("reply requested") != 0,
	}
	if err := r.end(); err != nil {
		return StandbyStatus{}, err
	}
	return s, nil
}
